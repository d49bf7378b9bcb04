"""Hydra overrides that make OU's evaluator read TOFU from local JSON files instead of the Hub.

Input (stdin): OU's composed config, as `python src/eval.py --cfg job ...` prints it. Every dataset
node whose `path` is `locuslab/TOFU` gets `path=json` and `data_files=<DATA_DIR>/<its name>.json`;
the file name is an interpolation of the node's own `name`, so split overrides keep working.
Usage: python dataset_overrides.py DATA_DIR < composed.yaml
"""
import sys

import yaml


def hub_dataset_nodes(node, key=""):
    if isinstance(node, dict):
        if node.get("path") == "locuslab/TOFU" and "name" in node:
            yield key
            return
        for child, value in node.items():
            yield from hub_dataset_nodes(value, f"{key}.{child}" if key else str(child))


def main() -> None:
    folder = sys.argv[1].rstrip("/")
    for key in hub_dataset_nodes(yaml.safe_load(sys.stdin)):
        print(f"{key}.path=json")
        print(f"+{key}.data_files={folder}/" + "${.name}.json")


if __name__ == "__main__":
    main()
