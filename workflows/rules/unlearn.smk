# Unlearning: one job per (benchmark, split, model, objective+rectifier[+parametrization], seed).
# The hyperparameters travel as a JSON run spec, so changing them in the config reruns the job.
# Runs with `evaluate_every` use a variant that also outputs their trajectory snapshots: temporary
# (deleted by Snakemake once `evaluate_run` has read them) or, with `keep_checkpoints`, kept. The
# variants exist only when the grid has such runs, so every other run's DAG and files are unchanged.


rule unlearn:
    input:
        data=lambda wc: L.data_inputs(wc.benchmark),
        target=lambda wc: L.reference_model(wc.benchmark, wc.split, wc.model, "target")[1],
    output:
        model=directory(L.unlearned_dir()),
        train_result=L.train_result(),
        train_log=L.run_file("train_log.jsonl"),
    params:
        spec=lambda wc: shlex_json(L.run_spec(wc)),
        data=lambda wc: L.data_location(wc.benchmark),
        target=lambda wc: L.reference_model(wc.benchmark, wc.split, wc.model, "target")[0],
        launch=lambda wc: L.launch_prefix(wc.model),
        snapshots="",
    log:
        f"{L.logs}/unlearn/{{benchmark}}/{{split}}/{{model}}/{{method}}/seed{{seed}}.log",
    benchmark:
        f"{L.logs}/benchmarks/unlearn/{{benchmark}}/{{split}}/{{model}}/{{method}}/seed{{seed}}.tsv"
    threads: L.threads
    resources:
        gpu=lambda wc: L.gpus(wc.model),
    conda:
        "../../environment.yml"
    shell:
        "OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} {params.launch} unlearn"
        " --spec {params.spec} --data {params.data} --target {params.target}"
        " --threads {threads} --out-model {output.model} --train-log {output.train_log}"
        " --train-result {output.train_result}{params.snapshots} > {log} 2>&1"



if L.trajectory_runs(kept=False):

    use rule unlearn as unlearn_snapshots with:
        output:
            model=directory(L.unlearned_dir()),
            train_result=L.train_result(),
            train_log=L.run_file("train_log.jsonl"),
            snapshots=temp(directory(L.snapshots_dir())),
        params:
            spec=lambda wc: shlex_json(L.run_spec(wc)),
            data=lambda wc: L.data_location(wc.benchmark),
            target=lambda wc: L.reference_model(wc.benchmark, wc.split, wc.model, "target")[0],
            launch=lambda wc: L.launch_prefix(wc.model),
            snapshots=lambda wc, output: f" --snapshots {output.snapshots}",
        wildcard_constraints:
            benchmark=L.trajectory_constraint(kept=False),

    ruleorder: unlearn_snapshots > unlearn


if L.trajectory_runs(kept=True):

    use rule unlearn as unlearn_kept_snapshots with:
        output:
            model=directory(L.unlearned_dir()),
            train_result=L.train_result(),
            train_log=L.run_file("train_log.jsonl"),
            snapshots=directory(L.snapshots_dir()),
        params:
            spec=lambda wc: shlex_json(L.run_spec(wc)),
            data=lambda wc: L.data_location(wc.benchmark),
            target=lambda wc: L.reference_model(wc.benchmark, wc.split, wc.model, "target")[0],
            launch=lambda wc: L.launch_prefix(wc.model),
            snapshots=lambda wc, output: f" --snapshots {output.snapshots}",
        wildcard_constraints:
            benchmark=L.trajectory_constraint(kept=True),

    ruleorder: unlearn_kept_snapshots > unlearn
