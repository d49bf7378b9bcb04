# Unlearning: one job per (benchmark, split, model, objective+rectifier[+parametrization], seed).
# The hyperparameters travel as a JSON run spec, so changing them in the config reruns the job.


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
        " --train-result {output.train_result} > {log} 2>&1"
