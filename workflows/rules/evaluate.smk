# Evaluation: one harness for every model. The retain reference is evaluated first because
# forget quality (KS test) and privleak read its per-item values.


rule evaluate_reference:
    input:
        data=lambda wc: L.data_inputs(wc.benchmark),
        model=lambda wc: L.reference_model(wc.benchmark, wc.split, wc.model, wc.role)[1],
        retain=lambda wc: (
            L.retain_metrics(wc.benchmark, wc.split, wc.model) if wc.role == "target" else []
        ),
    output:
        metrics=L.reference_file("metrics.json"),
        per_item=L.reference_file("per_item.parquet"),
    params:
        data=lambda wc: L.data_location(wc.benchmark),
        model=lambda wc: L.reference_model(wc.benchmark, wc.split, wc.model, wc.role)[0],
        retain_flag=lambda wc, input: (
            f"--retain-reference {os.path.dirname(input.retain[0])}" if input.retain else ""
        ),
        identity=lambda wc: L.reference_identity(wc.model, wc.role),
        out_dir=lambda wc, output: os.path.dirname(output.metrics),
        options=lambda wc: L.evaluation_options(wc.benchmark),
        format_flag=lambda wc: L.prompt_format_flag(wc.model),
    log:
        f"{L.logs}/evaluate/{{benchmark}}/{{split}}/{{model}}/reference-{{role}}.log",
    benchmark:
        f"{L.logs}/benchmarks/evaluate/{{benchmark}}/{{split}}/{{model}}/reference-{{role}}.tsv"
    threads: L.threads
    resources:
        gpu=lambda wc: min(L.gpus(wc.model), 1),
    conda:
        "../../environment.yml"
    shell:
        "OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} ubench evaluate"
        " --benchmark {wildcards.benchmark} --split {wildcards.split} --data {params.data}"
        " --model {params.model} {params.format_flag} {params.options} {params.retain_flag}"
        " --out {params.out_dir} --identity {params.identity} > {log} 2>&1"


rule evaluate_run:
    input:
        data=lambda wc: L.data_inputs(wc.benchmark),
        model=L.unlearned_dir(),
        train_result=L.train_result(),
        retain=lambda wc: L.retain_metrics(wc.benchmark, wc.split, wc.model),
    output:
        metrics=L.run_file("metrics.json"),
        per_item=L.run_file("per_item.parquet"),
    params:
        spec=lambda wc: shlex_json(L.run_spec(wc)),
        data=lambda wc: L.data_location(wc.benchmark),
        retain_flag=lambda wc, input: (
            f"--retain-reference {os.path.dirname(input.retain[0])}" if input.retain else ""
        ),
        out_dir=lambda wc, output: os.path.dirname(output.metrics),
        options=lambda wc: L.evaluation_options(wc.benchmark),
        snapshots="",
    log:
        f"{L.logs}/evaluate/{{benchmark}}/{{split}}/{{model}}/{{method}}/seed{{seed}}.log",
    benchmark:
        f"{L.logs}/benchmarks/evaluate/{{benchmark}}/{{split}}/{{model}}/{{method}}/seed{{seed}}.tsv"
    threads: L.threads
    resources:
        gpu=lambda wc: min(L.gpus(wc.model), 1),
    conda:
        "../../environment.yml"
    shell:
        "OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} ubench evaluate-run"
        " --spec {params.spec} --model {input.model} --train-result {input.train_result}"
        " --data {params.data} {params.options} {params.retain_flag}"
        " --out {params.out_dir}{params.snapshots} > {log} 2>&1"


# A run with evaluate_every also reads its snapshots (and writes trajectory.parquet); Snakemake
# deletes temporary snapshots once this job has finished.
import shlex

if L.trajectory_runs(kept=False) or L.trajectory_runs(kept=True):

    use rule evaluate_run as evaluate_run_trajectory with:
        input:
            data=lambda wc: L.data_inputs(wc.benchmark),
            model=L.unlearned_dir(),
            train_result=L.train_result(),
            retain=lambda wc: L.retain_metrics(wc.benchmark, wc.split, wc.model),
            snapshots=L.snapshots_dir(),
            target=lambda wc: L.reference_model(wc.benchmark, wc.split, wc.model, "target")[1],
        output:
            metrics=L.run_file("metrics.json"),
            per_item=L.run_file("per_item.parquet"),
            trajectory=L.run_file("trajectory.parquet"),
        params:
            spec=lambda wc: shlex_json(L.run_spec(wc)),
            data=lambda wc: L.data_location(wc.benchmark),
            retain_flag=lambda wc, input: (
                f"--retain-reference {os.path.dirname(input.retain[0])}" if input.retain else ""
            ),
            out_dir=lambda wc, output: os.path.dirname(output.metrics),
            options=lambda wc: L.evaluation_options(wc.benchmark),
            # the target's W0 rebuilds LoRA snapshots (merged as the run would have saved them)
            snapshots=lambda wc, input: f" --snapshots {input.snapshots} --target "
            + shlex.quote(L.reference_model(wc.benchmark, wc.split, wc.model, "target")[0]),
        wildcard_constraints:
            benchmark=L.trajectory_constraint_all(),

    ruleorder: evaluate_run_trajectory > evaluate_run
