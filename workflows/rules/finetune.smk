# Fine-tuning: the target model on the benchmark's `full` split and the retain reference on the
# complement of the forget split (TOFU recipe). Skipped when a config names an already
# fine-tuned model (e.g. locuslab/tofu_ft_phi-1.5).


rule finetune:
    input:
        data=lambda wc: L.data_inputs(wc.benchmark),
    output:
        directory(L.finetuned_dir()),
    params:
        data=lambda wc: L.data_location(wc.benchmark),
        base=lambda wc: GRID.model(wc.model)["base"],
        recipe=lambda wc: L.finetune_args(wc.model, wc.benchmark, wc.train_split),
        launch=lambda wc: L.launch_prefix(wc.model, "finetune"),
    log:
        f"{L.logs}/finetune/{{benchmark}}/{{model}}/{{train_split}}.log",
    benchmark:
        f"{L.logs}/benchmarks/finetune/{{benchmark}}/{{model}}/{{train_split}}.tsv"
    threads: L.threads
    resources:
        gpu=lambda wc: L.gpus(wc.model, "finetune"),
    conda:
        "../../environment.yml"
    shell:
        "OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} {params.launch} finetune"
        " --benchmark {wildcards.benchmark} --split {wildcards.train_split} --data {params.data}"
        " --model {params.base} {params.recipe} --out {output} > {log} 2>&1"
