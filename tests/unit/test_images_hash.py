"""Images are rebuilt only when their sources change: the content hash."""

import shutil

from harness.backends.docker import images as images


def test_content_hash_follows_the_sources(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    shutil.copytree(images.CONTAINERS / "python", root / "containers" / "python")
    monkeypatch.setattr(images, "REPO_ROOT", root)
    monkeypatch.setattr(images, "CONTAINERS", root / "containers")
    recipe = images.RECIPES["python"]
    first = images.content_hash(recipe, "sha256:base")
    assert images.content_hash(recipe, "sha256:base") == first
    assert images.content_hash(recipe, "sha256:other-base") != first
    (root / "containers" / "python" / "handlers" / "__pycache__").mkdir()
    (root / "containers" / "python" / "handlers" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    assert images.content_hash(recipe, "sha256:base") == first  # caches do not count
    (root / "containers" / "python" / "handlers" / "resilient.py").write_text("# changed\n")
    assert images.content_hash(recipe, "sha256:base") != first


def test_every_function_image_has_a_dockerfile():
    for recipe in images.RECIPES.values():
        assert (images.CONTAINERS / recipe.context / recipe.dockerfile).is_file(), recipe.kind
