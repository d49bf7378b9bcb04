# Metric meta-evaluation (config `meta_eval:`, `make meta-eval`): once every pool model, attacked run
# and retain reference of a benchmark is evaluated, `ubench meta-eval table` writes the benchmark's
# metric_table.json (faithfulness, Q, R, HM of every metric). The rule exists only with the block.

if GRID.meta_eval:

    rule meta_eval:
        input:
            lambda wc: L.meta_eval_inputs(wc.benchmark),
        output:
            L.meta_eval_table(),
        params:
            spec=lambda wc: shlex_json(GRID.meta_eval[wc.benchmark]),
            results=L.results,
        log:
            f"{L.logs}/meta_eval/{{benchmark}}.log",
        benchmark:
            f"{L.logs}/benchmarks/meta_eval/{{benchmark}}.tsv"
        threads: 1
        conda:
            "../../environment.yml"
        shell:
            "ubench meta-eval table --results {params.results} --spec {params.spec} --out {output} > {log} 2>&1"
