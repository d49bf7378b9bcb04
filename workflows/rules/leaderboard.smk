# Leaderboard: aggregate every metrics.json of this grid into the versioned table.


rule leaderboard:
    input:
        L.all_metrics(),
        L.meta_eval_tables(),  # the board's Metrics tab reads them
    output:
        L.leaderboard_table,
    params:
        results=lambda wc, input: L.results,
        out_dir=lambda wc, output: os.path.dirname(output[0]),
    log:
        f"{L.logs}/leaderboard.log",
    benchmark:
        f"{L.logs}/benchmarks/leaderboard.tsv"
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        "ubench leaderboard build --results {params.results} --out {params.out_dir} > {log} 2>&1"
