"""Streams, collate, the seeded schedule and the registries."""
import pytest
import torch

from methods.data import Schedule, build_streams, collate
from methods.registry import ANALYZERS, OBJECTIVES, PARAMETRIZATIONS, RECTIFIERS


def encode(question, answer):
    q = torch.tensor([ord(c) % 60 + 1 for c in question])
    a = torch.tensor([ord(c) % 60 + 1 for c in answer])
    ids = torch.cat([q, a])
    labels = torch.cat([torch.full_like(q, -100), a])
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def test_collate_right_pads():
    batch = collate([encode("ab", "c"), encode("abcd", "ef")], pad_token_id=0)
    assert batch["input_ids"].tolist()[0] == [*batch["input_ids"].tolist()[0][:3], 0, 0, 0]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 0], [1] * 6]
    assert batch["labels"][0].tolist()[2:] == [batch["input_ids"][0, 2].item(), -100, -100, -100]
    with pytest.raises(ValueError, match="pad_token_id is None"):
        collate([encode("a", "b")], None)


def test_build_streams_for_idknll_and_finetune():
    forget = [("q1", "a1"), ("q2", "a2"), ("q3", "a3")]
    retain = [("r1", "x"), ("r2", "y")]
    streams = build_streams("idknll", forget, retain, encode, seed=4)
    assert set(streams) == {"forget_idk", "retain", "forget"}  # forget: GRUN's gate loss reads it under IDK
    again = build_streams("idknll", forget, retain, encode, seed=4)
    assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(streams["forget_idk"], again["forget_idk"]))
    answers = {"".join(chr(c) for c in ex["input_ids"][2:].tolist()) for ex in streams["forget_idk"]}
    assert all(len(a) > 5 for a in answers)  # refusal lines, not the true answers
    assert set(build_streams("ga", forget, [], encode, 0)) == {"forget"}
    assert len(build_streams("finetune", forget, retain, encode, 0)["train"]) == 5


def test_schedule_same_global_batches_for_any_world_size():
    one = Schedule({"forget": 10, "retain": 7}, "forget", (), 2, 4, 1, seed=3)
    two = Schedule({"forget": 10, "retain": 7}, "forget", (), 2, 2, 2, seed=3)
    assert one.steps_per_epoch == two.steps_per_epoch == 2
    for step in range(4):
        assert one.micro_batches(step) == two.micro_batches(step)
        mine, total = two.for_rank(step, 1)
        assert mine == one.micro_batches(step)[1::2] and total == len(one.micro_batches(step))
    epoch0 = sorted(i for s in range(2) for mb in one.micro_batches(s) for i in mb["forget"])
    assert epoch0 == list(range(10))  # every forget item once per epoch; last window partial
    assert one.micro_batches(0) != one.micro_batches(2)  # a new permutation each epoch


def test_registries_discover_every_module_and_list_names_on_error():
    assert {"finetune", "ga", "graddiff", "npo", "simnpo", "idknll", "wga", "tnpo", "wtnpo"} <= set(OBJECTIVES.names())
    assert {"none", "gru", "pcgrad", "pcgrad-sym", "sago", "sago-prefer-retain", "blur"} <= set(RECTIFIERS.names())
    assert "full" in PARAMETRIZATIONS.names() and "geometry" in ANALYZERS.names()
    with pytest.raises(KeyError, match="available: .*sago"):
        RECTIFIERS.get("sagoo")
    with pytest.raises(ValueError, match="accepted: .*granularity"):
        RECTIFIERS.get("pcgrad")(granulartiy="global")


def test_idknll_streams_satisfy_grun_gate_plan():
    """IDK+NLL through GRUN: the gate loss reads forget and retain, which IDK+NLL itself does not."""
    from methods.registry import OBJECTIVES, PARAMETRIZATIONS, RECTIFIERS
    from methods.train import TrainConfig, check_streams, plan_tasks

    forget, retain = [("q1", "a1"), ("q2", "a2")], [("r1", "x")]
    streams = build_streams("idknll", forget, retain, encode, seed=0)
    plan = plan_tasks(OBJECTIVES.get("idknll")(), RECTIFIERS.get("none")(), [], PARAMETRIZATIONS.get("grun")())
    check_streams(plan, streams, TrainConfig(objective="idknll", rectifier="none"))
