import pytest

from training.data.paths import DATA_ROOT_ENV, FASHION_MNIST_REL, DataPaths, find_fonts


def test_data_root_wins_over_system(tmp_path):
    (tmp_path / FASHION_MNIST_REL).mkdir(parents=True)
    assert DataPaths.resolve(tmp_path).fashion_mnist_dir == tmp_path / FASHION_MNIST_REL


def test_env_variable_sets_the_data_root(tmp_path, monkeypatch):
    (tmp_path / FASHION_MNIST_REL).mkdir(parents=True)
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path))
    assert DataPaths.resolve().fashion_mnist_dir == tmp_path / FASHION_MNIST_REL


def test_find_fonts_dedupes_filters_and_sorts(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b" / "nested"
    second.mkdir(parents=True)
    first.mkdir()
    for name in ("Zeta.ttf", "Alpha.TTF", "readme.txt"):
        (first / name).write_text("x")
    for name in ("Zeta.ttf", "Mid.otf"):
        (second / name).write_text("x")
    fonts = find_fonts([first, tmp_path / "b"])
    assert [f.name for f in fonts] == ["Alpha.TTF", "Mid.otf", "Zeta.ttf"]
    assert fonts[2].parent == first  # the first directory wins for a duplicate name
    assert [f.name for f in find_fonts([first, second], 1, names={"Mid.otf"})] == ["Mid.otf"]


def test_too_few_fonts_is_a_clear_error(tmp_path):
    (tmp_path / "One.ttf").write_text("x")
    with pytest.raises(FileNotFoundError, match="need at least 3"):
        find_fonts([tmp_path])
