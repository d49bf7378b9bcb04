# Data: the embedded tofu-tiny benchmark is generated; real benchmarks are read from `data_dir`.


rule generate_tofu_tiny:
    output:
        directory(L.tofu_tiny_dir),
    params:
        options=L.tofu_tiny_args(),
    log:
        f"{L.logs}/generate_tofu_tiny.log",
    benchmark:
        f"{L.logs}/benchmarks/generate_tofu_tiny.tsv"
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        "ubench tofu-tiny --out {output} {params.options} > {log} 2>&1"
