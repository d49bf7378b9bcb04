# Data: the embedded tofu-tiny benchmark is generated; real benchmarks are read from `data_dir`.


rule generate_tofu_tiny:
    output:
        directory(L.tofu_tiny_dir),
    params:
        options=shlex_json(config.get("tofu_tiny", {})),
    log:
        f"{L.logs}/generate_tofu_tiny.log",
    benchmark:
        f"{L.logs}/benchmarks/generate_tofu_tiny.tsv"
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        "ubench tofu-tiny generate --out {output} --options {params.options} > {log} 2>&1"
