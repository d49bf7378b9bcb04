"""`ubench methods list` is generated from the plug-in files, and methods/README.md's block is its output."""
from methods import cli
from methods.registry import REGISTRIES


def test_listing_names_every_registered_plugin():
    listing = cli.plugin_listing(markdown=False)
    for registry in REGISTRIES:
        assert f"{registry.kind}s ({len(registry.names())}):" in listing
        for name in registry.names():
            assert f"\n  {name}" in listing, f"{registry.kind} {name} missing from `ubench methods list`"
            assert registry.summary(name), f"{registry.kind} {name} has no docstring to summarise"


def test_readme_block_is_the_generated_listing():
    text = cli.README.read_text(encoding="utf-8")
    assert cli.readme_with_listing(text, cli.plugin_listing(markdown=True)) == text, (
        "methods/README.md's plug-in block is stale: run `ubench methods list --update-readme`")


def test_readme_block_replacement_keeps_the_rest():
    text = f"intro\n{cli.BEGIN}\nold\n{cli.END}\noutro\n"
    assert cli.readme_with_listing(text, "new\n") == f"intro\n{cli.BEGIN}\nnew\n{cli.END}\noutro\n"
