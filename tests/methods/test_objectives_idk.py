"""IDK answers (issue #23 item 8): TOFU's refusal file, redrawn per example and epoch as TOFU, OU,
GRUN and G-effect draw them, and IdkNLL's forget stream aligned with its refusal stream."""
from pathlib import Path

import pytest
import torch

from methods.analysis.geffect import GEffect
from methods.data import RedrawnRefusals, Schedule, build_streams, refusals
from methods.registry import OBJECTIVES, RECTIFIERS
from methods.train import TrainConfig, plan_tasks, train
from tests.methods.conftest import tiny_llama

SHARED_IDK = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tofu" / "idontknow.jsonl"


def encode(question, answer):
    q = torch.tensor([ord(c) % 60 + 1 for c in question])
    a = torch.tensor([ord(c) % 60 + 1 for c in answer])
    ids = torch.cat([q, a])
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids),
            "labels": torch.cat([torch.full_like(q, -100), a]), "text": (question, answer)}


FORGET = [(f"question {i}?", f"answer {i}") for i in range(40)]
RETAIN = [(f"retain {i}?", f"fact {i}") for i in range(30)]


def test_refusals_are_tofus_idontknow_lines():
    lines = refusals()
    assert len(lines) == 100 and len(set(lines)) == 100
    assert lines[:3] == ["I'm not certain about that.", "That's beyond my current knowledge base.",
                         "I don't have that information."]
    assert lines[-1] == "I'm not sure I can help with that."


@pytest.mark.shared_data
def test_shipped_refusals_equal_the_shared_tofu_file():
    if not SHARED_IDK.is_file():
        pytest.skip(f"{SHARED_IDK} absent")
    assert refusals() == [line.strip() for line in SHARED_IDK.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_forget_idk_pairs_each_question_with_a_refusal_redrawn_every_epoch():
    stream = build_streams("idknll", FORGET, RETAIN, encode, seed=4)["forget_idk"]
    assert isinstance(stream, RedrawnRefusals) and len(stream) == len(FORGET)
    lines = set(refusals())
    epoch0 = [stream[i]["text"] for i in range(len(FORGET))]
    epoch1 = [stream[len(FORGET) + i]["text"] for i in range(len(FORGET))]
    assert [q for q, _ in epoch0] == [q for q, _ in epoch1] == [q for q, _ in FORGET]
    assert all(a in lines for _, a in epoch0 + epoch1)
    assert sum(a0 != a1 for (_, a0), (_, a1) in zip(epoch0, epoch1)) > 30  # redrawn, 1/100 chance to repeat
    assert len({a for _, a in epoch0}) > 20  # drawn per example, not one line for all
    again = build_streams("idknll", FORGET, RETAIN, encode, seed=4)["forget_idk"]
    assert [again[len(FORGET) + i]["text"] for i in range(len(FORGET))] == epoch1  # seeded
    other = build_streams("idknll", FORGET, RETAIN, encode, seed=5)["forget_idk"]
    assert [other[i]["text"] for i in range(len(FORGET))] != epoch0
    assert [e["text"] for e in stream] == epoch0 == [e["text"] for e in stream[:]]


def test_schedule_addresses_the_redrawn_stream_by_epoch():
    schedule = Schedule({"forget": 10, "forget_idk": 10, "retain": 7}, "forget", ("forget_idk",), 5, 1, 1, seed=0,
                        redrawn=("forget_idk",))
    for step in range(4):
        epoch = step // schedule.steps_per_epoch
        for micro in schedule.micro_batches(step):
            assert micro["forget_idk"] == [epoch * 10 + i for i in micro["forget"]]


class ServedRefusals(RedrawnRefusals):
    """Records every row the loop reads."""

    def __init__(self, *args):
        super().__init__(*args)
        self.served = []

    def __getitem__(self, index):
        item = super().__getitem__(index)
        if not isinstance(index, slice):
            self.served.append(item["text"])
        return item


def test_idkdpo_training_sees_new_refusals_in_the_second_epoch(tmp_path):
    streams = build_streams("idkdpo", FORGET[:8], RETAIN[:8], encode, seed=0)
    streams["forget_idk"] = stream = ServedRefusals(FORGET[:8], encode, 0, refusals())
    config = TrainConfig(objective="idkdpo", lr=1e-3, epochs=2, batch_size=4, grad_accum=2)
    assert train(tiny_llama(), streams, config, tmp_path, pad_token_id=0, progress=False).status == "ok"
    checked = 8  # check_examples reads epoch 0 once before training
    epoch0, epoch1 = stream.served[checked:checked + 8], stream.served[checked + 8:checked + 16]
    assert len(stream.served) == checked + 16
    assert sorted(epoch0) == sorted(stream[i]["text"] for i in range(8))
    assert sorted(q for q, _ in epoch0) == sorted(q for q, _ in epoch1)
    assert {q: a for q, a in epoch0} != {q: a for q, a in epoch1}


def test_idknll_aligns_the_forget_stream_other_parts_read():
    """G-effect's forget-risk probe (and GRUN's gate loss) read 'forget' in the same micro-batch as
    IdkNLL's refusals: they must be the same questions, not random partners."""
    for name in ("idknll", "idknll_forget"):
        objective = OBJECTIVES.get(name)()
        plan = plan_tasks(objective, RECTIFIERS.get("none")(), [GEffect()])
        assert "forget" in plan.streams
        lengths = {s: 10 for s in plan.streams} | {"retain": 13}
        schedule = Schedule(lengths, plan.streams[0], tuple(s for s in objective.aligned_streams if s in plan.streams),
                            2, 2, 1, seed=1)
        for step in range(6):
            for micro in schedule.micro_batches(step):
                assert micro["forget"] == micro["forget_idk"], name


def test_grun_draws_each_refusal_once_and_the_run_spec_says_so():
    once = build_streams("idknll", FORGET, RETAIN, encode, seed=4, idk_draw="once")["forget_idk"]
    assert not once.redrawn_per_epoch
    assert [once[len(FORGET) + i]["text"] for i in range(len(FORGET))] == [e["text"] for e in once]
    schedule = Schedule({"forget_idk": 10, "retain": 7}, "forget_idk", (), 5, 1, 1, seed=0,
                        redrawn=tuple(n for n, s in {"forget_idk": once}.items() if s.redrawn_per_epoch))
    assert schedule.redrawn == ()
    with pytest.raises(ValueError, match="idk_draw must be one of"):
        build_streams("idknll", FORGET, RETAIN, encode, seed=4, idk_draw="never")["forget_idk"]

    from workflows import grid
    from workflows.commands import train_config_from_spec

    repo = Path(__file__).resolve().parents[2]
    runs = grid.build(grid.load_config(repo / "config" / "paper" / "grun_tofu.yaml")).runs
    draws = {run.objective: run.hyperparameters.get("idk_draw", "epoch") for run in runs}
    assert draws["idknll"] == "once"
    spec = {"benchmark": "tofu", "split": "forget10", "objective": "idknll", "rectifier": "none", "seed": 0,
            "hyperparameters": {"idk_draw": "once", "lr": 1e-5}}
    assert train_config_from_spec(spec).lr == 1e-5  # a run-spec extra, not a TrainConfig field
