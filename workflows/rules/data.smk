# Data: generated benchmarks (the tiny twins: tofu-tiny, ...) are written by their generator;
# real benchmarks are read from `data_dir` and checked by each command when it opens them.


rule generate_data:
    output:
        directory(L.generated_data_dir()),
    params:
        options=lambda wc: L.generator_args(wc.benchmark),
    log:
        f"{L.logs}/generate_data/{{benchmark}}.log",
    benchmark:
        f"{L.logs}/benchmarks/generate_data/{{benchmark}}.tsv"
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        "ubench data generate --benchmark {wildcards.benchmark} --out {output} {params.options} > {log} 2>&1"
