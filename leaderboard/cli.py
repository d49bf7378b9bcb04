"""`ubench leaderboard build | validate | publish` and `ubench report`."""
from __future__ import annotations

import argparse
import sys


def _build(args: argparse.Namespace) -> int:
    from leaderboard import aggregate, build, metric_tables

    try:
        record = build.build(args.results, args.out, previous=args.previous)
    except (aggregate.AggregationError, metric_tables.MetricTableError, FileExistsError, FileNotFoundError) as error:
        print(f"leaderboard build: {error}", file=sys.stderr)
        return 2
    changes = record["changes"]
    print(f"leaderboard {record['version']} ({record['bump']}): {record['n_rows']} rows, "
          f"{len(changes['added'])} added, {len(changes['changed'])} changed, "
          f"{len(changes['removed'])} removed; {record['content_hash']} -> {args.out}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from leaderboard import validate

    failed = False
    for path in args.paths:
        try:
            report = validate.validate_path(path)
        except FileNotFoundError as error:
            print(f"{error}", file=sys.stderr)
            failed = True
            continue
        for message in report.errors:
            print(f"{path}: {message}" if not message.startswith(str(path)) else message,
                  file=sys.stderr)
        if report.ok and not report.documents:
            print(f"{path}: no metrics.json found", file=sys.stderr)
            failed = True
        elif report.ok:
            print(f"{path}: {len(report.documents)} metrics.json valid")
        failed |= not report.ok
    return 1 if failed else 0


def _publish(args: argparse.Namespace) -> int:
    from leaderboard import publish

    try:
        result = publish.publish(args.build, args.repo, target=args.target, force=args.force,
                                 space=args.space, no_space=args.no_space)
    except publish.PublishError as error:
        print(f"leaderboard publish: {error}", file=sys.stderr)
        return 2
    print(result.message)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "leaderboard", help="aggregate results into the versioned table, validate submissions, publish",
        description="Build the leaderboard (tables + offline web page), validate submitted "
                    "metrics.json files, publish a build to a Hugging Face dataset repository.")
    commands = parser.add_subparsers(dest="leaderboard_command", metavar="<subcommand>", required=True)

    build = commands.add_parser(
        "build", help="aggregate every metrics.json into a versioned build folder",
        description="Aggregate every metrics.json below the results folders into one table "
                    "(Parquet, CSV, JSON) with means and 95%% t-intervals over seeds, flags, Pareto "
                    "ranks, a semantic version, a content hash, a changelog and the web page; "
                    "meta_eval/<benchmark>/metric_table.json files in the results folders (the metric "
                    "meta-evaluation) are checked and shown in a Metrics tab.")
    build.add_argument("--results", nargs="+", default=["results"], metavar="DIR",
                       help="results folders (default: results); e.g. results submissions/*/results")
    build.add_argument("--out", default="site", help="build folder to (re)write (default: site)")
    build.add_argument("--previous", default=None, metavar="BUILD_OR_VERSION_JSON",
                       help="prior build folder or its version.json; default: --out itself when it "
                            "already holds a build")
    build.set_defaults(func=_build)

    check = commands.add_parser(
        "validate", help="check submitted metrics.json files (exit 1 naming each bad field)",
        description="Validate a metrics.json, or every metrics.json below a folder: schema, "
                    "provenance (config hash equals the submitted config.yaml), duplicates, value "
                    "ranges, NaN/Infinity, safe names.")
    check.add_argument("paths", nargs="+", metavar="PATH", help="a metrics.json or a folder")
    check.set_defaults(func=_validate)

    pub = commands.add_parser(
        "publish", help="upload a build to a Hub dataset repository and its page to a static Space",
        description="Upload a build (Parquet, dataset card, web page) to a Hugging Face dataset "
                    "repository and tag it v<version>, then the web page of that version to a "
                    "static Space (tagged the same) that links the dataset at that tag. Publishing a "
                    "version that is already tagged does nothing; if the Space step fails, rerunning "
                    "the same command retries the Space only. The token is read from the HF_TOKEN "
                    "environment variable only.")
    pub.add_argument("--build", default="site", help="build folder (default: site)")
    pub.add_argument("--repo", required=True, help="dataset repository, e.g. user/unlearn-bench")
    pub.add_argument("--target", default="hub", metavar="hub|local:DIR",
                     help="hub (default) or local:DIR for a dry run into a folder")
    space = pub.add_mutually_exclusive_group()
    space.add_argument("--space", default=None, metavar="OWNER/NAME",
                       help="Space that serves the page (default: the same id as --repo, i.e. "
                            "https://huggingface.co/spaces/<repo>)")
    space.add_argument("--no-space", action="store_true", help="publish the dataset only")
    pub.add_argument("--force", action="store_true",
                     help="local:DIR only: write into a non-empty folder that publish did not create")
    pub.set_defaults(func=_publish)
    register_report(subparsers)  # `ubench report` is a top-level command of its own
    from leaderboard.meta_eval.cli import register as register_meta_eval

    register_meta_eval(subparsers)  # `ubench meta-eval` too


def _report(args: argparse.Namespace) -> int:
    from leaderboard import aggregate, report

    try:
        md, page = report.write(args.configfile, args.out or f"reports/{_config_stem(args.configfile)}",
                                results=args.results, cores=args.cores, stem=args.stem)
    except aggregate.AggregationError as error:
        print(f"report: {error}", file=sys.stderr)
        return 2
    print(f"report: {md} and {page}")
    return 0


def _config_stem(path: str) -> str:
    from pathlib import Path

    return Path(path).stem


def register_report(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="a paper config's published table next to our results, and the seed-paper claims",
        description="Write <out>/report.md and <out>/report.html for one config: every published row "
                    "of its `report.sources` (leaderboard/data/published.yaml) with our mean and 95% "
                    "interval over seeds, the difference and whether the published value lies in our "
                    "interval; rows without results say which snakemake command produces them; published "
                    "rows the grid does not run give the reason (`report.not_in_grid`). With "
                    "`report.claims` (config/findings.yaml) it checks the seed papers' qualitative claims "
                    "on the same results.",
        epilog="examples:\n"
               "  ubench report --configfile config/paper/ou_tofu.yaml\n"
               "  ubench report --configfile config/findings.yaml --out docs --stem findings\n"
               "  ubench report --configfile config/paper/sago_wmdp.yaml --results results submissions/x/results",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", required=True, metavar="YAML",
                        help="the grid, e.g. config/paper/gru_tofu.yaml (config/default.yaml underneath, as Snakemake)")
    parser.add_argument("--results", nargs="+", default=None, metavar="DIR",
                        help="results folders to read (default: the config's results_dir)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="folder for the report (default: reports/<config file stem>)")
    parser.add_argument("--stem", default="report", help="file name without suffix (default: report)")
    parser.add_argument("--cores", type=int, default=2,
                        help="--cores of the snakemake commands the report suggests (default: 2)")
    parser.set_defaults(func=_report)
