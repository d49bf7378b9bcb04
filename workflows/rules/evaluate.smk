# Evaluation: one harness for every model. The retain reference is evaluated first because
# forget quality (KS test) reads its per-item truth ratios.


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
            f"--retain-per-item {input.retain[0]}" if input.retain else ""
        ),
        out_dir=lambda wc, output: os.path.dirname(output.metrics),
        options=L.evaluation_options(),
        launch=lambda wc: L.launch_prefix(wc.model),
    log:
        f"{L.logs}/evaluate/{{benchmark}}/{{split}}/{{model}}/reference-{{role}}.log",
    benchmark:
        f"{L.logs}/benchmarks/evaluate/{{benchmark}}/{{split}}/{{model}}/reference-{{role}}.tsv"
    threads: L.threads
    resources:
        gpu=lambda wc: L.gpus(wc.model),
    conda:
        "../../environment.yml"
    shell:
        "OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} {params.launch} evaluate"
        " --benchmark {wildcards.benchmark} --split {wildcards.split} --data-dir {params.data}"
        " --model {params.model} --model-name {wildcards.model} --role {wildcards.role}"
        " {params.retain_flag} {params.options} --threads {threads}"
        " --out-dir {params.out_dir} > {log} 2>&1"


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
        data=lambda wc: L.data_location(wc.benchmark),
        retain_flag=lambda wc, input: (
            f"--retain-per-item {input.retain[0]}" if input.retain else ""
        ),
        out_dir=lambda wc, output: os.path.dirname(output.metrics),
        options=L.evaluation_options(),
        launch=lambda wc: L.launch_prefix(wc.model),
    log:
        f"{L.logs}/evaluate/{{benchmark}}/{{split}}/{{model}}/{{method}}/seed{{seed}}.log",
    benchmark:
        f"{L.logs}/benchmarks/evaluate/{{benchmark}}/{{split}}/{{model}}/{{method}}/seed{{seed}}.tsv"
    threads: L.threads
    resources:
        gpu=lambda wc: L.gpus(wc.model),
    conda:
        "../../environment.yml"
    shell:
        "OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} {params.launch} evaluate"
        " --benchmark {wildcards.benchmark} --split {wildcards.split} --data-dir {params.data}"
        " --model {input.model} --model-name {wildcards.model} --role unlearned"
        " --train-result {input.train_result} {params.retain_flag} {params.options}"
        " --threads {threads} --out-dir {params.out_dir} > {log} 2>&1"
