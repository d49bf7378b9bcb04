"""Which metrics can be trusted: open-unlearning's metric meta-evaluation (Dorna et al. 2025, §4.2)
re-run on our benchmarks. `scores` holds the pure maths (faithfulness, Q, R, HM, bootstrap),
`pools` reads the evaluated pool and robustness models, `table` writes metric_table.json,
`replication` checks open-unlearning's Table 2 ordering, `render` writes docs/meta-eval.md."""
