# Attacks (methods/attacks): is the knowledge forgotten or hidden? After `unlearn`, each attack of
# the run's experiment (`attacks:` in the config) changes the weights inside the evaluation job
# (quantize, relearn: `evaluate_attack` loads the unlearned model and attacks it in memory, nothing
# written), changes them in a job of its own (`attack`, `attack_reference`: an entry with
# `keep_model: true`, or a weight attack not applied in evaluation; `evaluate_attack` then reads the
# attacked model and its attack.json) or only the prompts (prompt: `evaluate_attack` reads the
# unlearned model). An attack job's model is KEPT (not temp): it exists only where the model is to
# be kept, so an attack not applied in evaluation keeps its model too. Results land beside the run's:
# <run>/attacks/<name>-<variant>/{metrics.json,per_item.parquet}, the same whether the model is kept
# or not. A diverged run's attacks are recorded as not applicable. The rules exist only when the
# grid has attacks.

import shlex

if L.attack_labels():

    rule attack:
        input:
            data=lambda wc: L.data_inputs(wc.benchmark),
            model=L.unlearned_dir(),
            train_result=L.train_result(),
        output:
            model=directory(L.attack_work("model")),
            record=L.attack_work("attack.json"),
        params:
            spec=lambda wc: shlex_json(L.run_spec(wc)),
            attack=lambda wc: shlex.quote(L.attack_entry(wc).as_json()),
            data=lambda wc: L.data_location(wc.benchmark),
        wildcard_constraints:
            attack=L.attack_pattern(own_job=True),
        log:
            f"{L.logs}/attack/{{benchmark}}/{{split}}/{{model}}/{{method}}/seed{{seed}}/{{attack}}.log",
        benchmark:
            f"{L.logs}/benchmarks/attack/{{benchmark}}/{{split}}/{{model}}/{{method}}/seed{{seed}}/{{attack}}.tsv"
        threads: L.threads
        resources:
            gpu=lambda wc: min(L.gpus(wc.model), 1),
        conda:
            "../../environment.yml"
        shell:
            "OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} ubench attack"
            " --spec {params.spec} --attack {params.attack} --model {input.model}"
            " --train-result {input.train_result} --data {params.data}"
            " --out-model {output.model} --record {output.record} --quiet > {log} 2>&1"

    rule evaluate_attack:
        input:
            unpack(L.attack_inputs),
            data=lambda wc: L.data_inputs(wc.benchmark),
            train_result=L.train_result(),
            run=L.run_file("metrics.json"),
            target=lambda wc: [L.reference_file("metrics.json", wc.benchmark, wc.split, wc.model, "target")],
            retain=lambda wc: L.retain_for_attack(wc.benchmark, wc.split, wc.model, wc.attack),
        output:
            metrics=L.attack_file("metrics.json"),
            per_item=L.attack_file("per_item.parquet"),
        params:
            spec=lambda wc: shlex_json(L.run_spec(wc)),
            attack=lambda wc: shlex.quote(L.attack_entry(wc).as_json()),
            data=lambda wc: L.data_location(wc.benchmark),
            record_flag=lambda wc, input: f"--record {input.record}" if "record" in input.keys() else "",
            retain_flag=lambda wc, input: (
                f"--retain-reference {os.path.dirname(input.retain[0])}" if input.retain else ""
            ),
            run_dir=lambda wc, input: os.path.dirname(input.run),
            target_dir=lambda wc, input: os.path.dirname(input.target[0]),
            out_dir=lambda wc, output: os.path.dirname(output.metrics),
            options=lambda wc: L.evaluation_options(wc.benchmark),
        wildcard_constraints:
            attack=L.attack_pattern(),
        log:
            f"{L.logs}/evaluate_attack/{{benchmark}}/{{split}}/{{model}}/{{method}}/seed{{seed}}/{{attack}}.log",
        benchmark:
            f"{L.logs}/benchmarks/evaluate_attack/{{benchmark}}/{{split}}/{{model}}/{{method}}/seed{{seed}}/{{attack}}.tsv"
        threads: L.threads
        resources:
            gpu=lambda wc: min(L.gpus(wc.model), 1),
        conda:
            "../../environment.yml"
        shell:
            "OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} ubench evaluate-attack"
            " --spec {params.spec} --attack {params.attack} --model {input.model} {params.record_flag}"
            " --train-result {input.train_result} --data {params.data} {params.options} {params.retain_flag}"
            " --run-results {params.run_dir} --target-results {params.target_dir}"
            " --out {params.out_dir} --quiet > {log} 2>&1"

    # The reference models (target, retain) get the same attacks; the retain model relearned is
    # what relearning recovers from a model that never saw the forget set.
    rule attack_reference:
        input:
            data=lambda wc: L.data_inputs(wc.benchmark),
            source=lambda wc: L.reference_model(wc.benchmark, wc.split, wc.model, wc.role)[1],
        output:
            model=directory(L.reference_attack_work("model")),
            record=L.reference_attack_work("attack.json"),
        params:
            spec=lambda wc: shlex_json(L.reference_spec(wc)),
            attack=lambda wc: shlex.quote(L.reference_attack_entry(wc).as_json()),
            data=lambda wc: L.data_location(wc.benchmark),
            model=lambda wc: L.reference_model(wc.benchmark, wc.split, wc.model, wc.role)[0],
        wildcard_constraints:
            attack=L.attack_pattern(own_job=True),
        log:
            f"{L.logs}/attack/{{benchmark}}/{{split}}/{{model}}/reference-{{role}}/{{attack}}.log",
        benchmark:
            f"{L.logs}/benchmarks/attack/{{benchmark}}/{{split}}/{{model}}/reference-{{role}}/{{attack}}.tsv"
        threads: L.threads
        resources:
            gpu=lambda wc: min(L.gpus(wc.model), 1),
        conda:
            "../../environment.yml"
        shell:
            "OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} ubench attack"
            " --spec {params.spec} --attack {params.attack} --model {params.model} --data {params.data}"
            " --out-model {output.model} --record {output.record} --quiet > {log} 2>&1"

    rule evaluate_attack_reference:
        input:
            unpack(L.reference_attack_inputs),
            data=lambda wc: L.data_inputs(wc.benchmark),
            own=L.reference_file("metrics.json"),
            target=lambda wc: [L.reference_file("metrics.json", wc.benchmark, wc.split, wc.model, "target")],
            retain=lambda wc: L.retain_for_attack(wc.benchmark, wc.split, wc.model, wc.attack, wc.role),
        output:
            metrics=L.reference_attack_file("metrics.json"),
            per_item=L.reference_attack_file("per_item.parquet"),
        params:
            spec=lambda wc: shlex_json(L.reference_spec(wc)),
            attack=lambda wc: shlex.quote(L.reference_attack_entry(wc).as_json()),
            model=lambda wc: L.reference_attack_model(wc),
            data=lambda wc: L.data_location(wc.benchmark),
            record_flag=lambda wc, input: f"--record {input.record}" if "record" in input.keys() else "",
            retain_flag=lambda wc, input: (
                f"--retain-reference {os.path.dirname(input.retain[0])}" if input.retain else ""
            ),
            own_dir=lambda wc, input: os.path.dirname(input.own),
            target_dir=lambda wc, input: os.path.dirname(input.target[0]),
            out_dir=lambda wc, output: os.path.dirname(output.metrics),
            options=lambda wc: L.evaluation_options(wc.benchmark),
        wildcard_constraints:
            attack=L.attack_pattern(),
        log:
            f"{L.logs}/evaluate_attack/{{benchmark}}/{{split}}/{{model}}/reference-{{role}}/{{attack}}.log",
        benchmark:
            f"{L.logs}/benchmarks/evaluate_attack/{{benchmark}}/{{split}}/{{model}}/reference-{{role}}/{{attack}}.tsv"
        threads: L.threads
        resources:
            gpu=lambda wc: min(L.gpus(wc.model), 1),
        conda:
            "../../environment.yml"
        shell:
            "OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} ubench evaluate-attack"
            " --spec {params.spec} --attack {params.attack} --model {params.model} {params.record_flag}"
            " --data {params.data} {params.options} {params.retain_flag}"
            " --run-results {params.own_dir} --target-results {params.target_dir}"
            " --out {params.out_dir} --quiet > {log} 2>&1"
