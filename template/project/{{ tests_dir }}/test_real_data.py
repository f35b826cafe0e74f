"""Real data trains right in one command, and every run records what produced it.

Real tables shipped inside scikit-learn (digits, wine, breast cancer, diabetes: no download) go through the
project's CSV dataset with default flags and are compared with scikit-learn's linear models on the very same
split; generated PNG/JPEG folders and numpy arrays go through the image-folder and arrays datasets. These are
datasets `litscaffold add dataset NAME --blueprint csv|image-folder|arrays` makes: a test whose dataset this
project does not have is skipped, saying how to add it. Every file and run lives under pytest's temporary folder.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import QUIET, ROOT, one_made_from, project_copy, run_script

pytestmark = pytest.mark.slow
sklearn_datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn (the dev extra) has the tables")
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import r2_score
from sklearn.preprocessing import StandardScaler

SEED_SPLIT = 0  # the datasets' default split_seed


def train(save_dir: Path, *args: str, cwd: Path | None = None) -> Path:
    proc = run_script("trainer.py", *QUIET, "--save_dir", str(save_dir), *args, cwd=cwd or ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Path(proc.stdout.split("Run directory:")[1].split()[0])


def refused(save_dir: Path, *args: str) -> str:
    before = sorted(save_dir.glob("*/*"))
    proc = run_script("trainer.py", "--save_dir", str(save_dir), "--max_epochs", "1", *args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert sorted(save_dir.glob("*/*")) == before  # a refused run leaves no run folder
    return proc.stderr.strip().splitlines()[-1]


def predictions(*args: str, cwd: Path | None = None) -> list[dict[str, str]]:
    proc = run_script("predict.py", *args, cwd=cwd or ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with Path(proc.stdout.strip().splitlines()[-1].split(" -> ")[1]).open() as handle:
        return list(csv.DictReader(handle))


def split_rows(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The datasets' split (data/base.py random_splits): val first, then test, the rest is train."""
    import torch

    order = torch.randperm(n, generator=torch.Generator().manual_seed(SEED_SPLIT)).numpy()
    n_val, n_test = max(1, round(n * 0.2)), max(1, round(n * 0.2))
    return order[n_val + n_test:], order[n_val:n_val + n_test]


def write_table(path: Path, x: np.ndarray, y: np.ndarray, names: list[str]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*names, "label"])
        writer.writerows([*row, target] for row, target in zip(x.tolist(), y.tolist()))


TABLES = {  # scikit-learn loader: (task, how far below the linear model we may land)
    "load_digits": ("classification", 0.04),  # 64 pixels, some constant in training
    "load_wine": ("classification", 0.06),
    "load_breast_cancer": ("classification", 0.04),
    "load_diabetes": ("regression", 0.08),
}


@pytest.fixture(scope="module")
def trained_tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each real table trained once with default flags, all at the same time (one thread each: on 2 cores four
    single-threaded runs finish in about half the time of four in a row)."""
    table = one_made_from("dataset", "csv")
    where = tmp_path_factory.mktemp("tables")
    procs = {}
    for loader, (task, _) in TABLES.items():
        bunch = getattr(sklearn_datasets, loader)()
        write_table(where / f"{loader}.csv", bunch.data, bunch.target, [f"f{i}" for i in range(bunch.data.shape[1])])
        procs[loader] = subprocess.Popen(
            [sys.executable, "trainer.py", *QUIET, "--save_dir", str(where / "logs"), "--model", "mlp",
             "--dataset", table, "--path", str(where / f"{loader}.csv"), "--target", "label", "--task", task],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    runs = {}
    for loader, proc in procs.items():
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, (loader, err[-3000:])
        runs[loader] = Path(out.split("Run directory:")[1].split()[0])
    return runs


@pytest.mark.parametrize("loader", list(TABLES))
def test_real_tables_with_default_flags_match_a_linear_model(trained_tables: dict[str, Path], loader: str) -> None:
    task, margin = TABLES[loader]
    bunch = getattr(sklearn_datasets, loader)()
    x, y = bunch.data, bunch.target
    rows = predictions(str(trained_tables[loader]))
    train_rows, test_rows = split_rows(len(x))
    assert len(rows) == len(test_rows)
    scaler = StandardScaler().fit(x[train_rows])
    if task == "classification":
        baseline = LogisticRegression(max_iter=5000).fit(scaler.transform(x[train_rows]), y[train_rows])
        linear = baseline.score(scaler.transform(x[test_rows]), y[test_rows])
        ours = np.mean([row["class"] == row["target"] for row in rows])
    else:
        baseline = LinearRegression().fit(scaler.transform(x[train_rows]), y[train_rows])
        linear = baseline.score(scaler.transform(x[test_rows]), y[test_rows])
        ours = r2_score([float(row["target"]) for row in rows], [float(row["prediction"]) for row in rows])
    assert ours >= linear - margin, (loader, ours, linear)


def test_table_mistakes_are_one_line_each(tmp_path: Path) -> None:
    table = one_made_from("dataset", "csv")
    logs = tmp_path / "logs"
    # Header names with spaces and \r are cleaned; a constant column gets a scale of 1 and trains.
    path = tmp_path / "messy.csv"
    path.write_text(" a , b ,colour, label \r\n" + "".join(
        f"{i},{i % 3},{('red', 'blue')[i % 2]},{2 * i + 1}\r\n" for i in range(60)))
    line = refused(logs, "--dataset", table, "--path", str(path), "--target", "label", "--features", "a,label")
    assert "target column 'label'" in line and "--features" in line
    run_dir = train(logs, "--dataset", table, "--path", str(path), "--target", "label", "--max_epochs", "2")
    state = json.loads((run_dir / "run.json").read_text())
    assert state["data_hparams"]["features"] == ""  # every column but the target, the text one one-hot encoded
    constant = tmp_path / "constant.csv"
    constant.write_text("a,flat,label\n" + "".join(f"{i},{0 if i % 5 else 1},{i}\n" for i in range(60)))
    train(logs, "--dataset", table, "--path", str(constant), "--target", "label", "--max_epochs", "1")
    (tmp_path / "holes.csv").write_text("a,b,label\n1,2,3\n4,,6\n7,8,9\n")
    line = refused(logs, "--dataset", table, "--path", str(tmp_path / "holes.csv"), "--target", "label")
    assert "holes.csv: row 3, column b is empty" in line
    (tmp_path / "words.csv").write_text("a,b,label\n1,2,3\n4,five,6\n7,8,9\n")
    line = refused(logs, "--dataset", table, "--path", str(tmp_path / "words.csv"), "--target", "label")
    assert "words.csv: row 3, column b holds 'five', not a number" in line
    (tmp_path / "sales.csv").write_text("a,b,price\n" + "".join(f"{i},{i * 2},{i * 3}\n" for i in range(50)))
    line = refused(logs, "--model", "mlp", "--dataset", table, "--path", str(tmp_path / "sales.csv"),
                   "--features", "a,size", "--target", "price", "--fast_dev_run", "true")
    assert "size" in line and "a, b, price" in line  # the columns it found


def make_pictures(root: Path, per_class: int, seed: int) -> None:
    """Three classes told apart by colour and stripes, as PNG and JPEG files of mixed sizes and modes."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label, (colour, vertical) in {"red": ((200, 40, 40), True), "green": ((40, 200, 40), False),
                                      "blue": ((40, 40, 200), True)}.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            height, width = int(rng.integers(20, 48)), int(rng.integers(20, 48))
            pixels = np.clip(np.array(colour) + rng.normal(0, 25, (height, width, 3)), 0, 255)
            stripes = (np.arange(width) % 6 < 3)[None, :] if vertical else (np.arange(height) % 6 < 3)[:, None]
            pixels = np.where(stripes[..., None], pixels, pixels * 0.5).astype(np.uint8)
            image = Image.fromarray(pixels, "RGB")
            if i % 3 == 0:
                image = image.convert("L")  # grey pictures among the colour ones
            image.save(root / label / f"{label}{i}.{'jpg' if i % 2 else 'png'}")


def test_a_folder_of_pictures_trains_the_convnet_and_predicts_new_files(tmp_path: Path) -> None:
    pictures, convnet = one_made_from("dataset", "image-folder"), one_made_from("model", "convnet")
    logs = tmp_path / "logs"
    make_pictures(tmp_path / "pictures", per_class=30, seed=0)
    run_dir = train(logs, "--model", convnet, "--dataset", pictures, "--path", str(tmp_path / "pictures"),
                    "--image_size", "16", "--max_epochs", "15", "--augment", "true")
    make_pictures(tmp_path / "new", per_class=4, seed=1)
    rows = predictions(str(run_dir), "--inputs", str(tmp_path / "new"))
    assert len(rows) == 12 and set(rows[0]) == {"index", "file", "class", "confidence"}
    correct = [row["class"] == row["file"].split("/")[0] for row in rows]
    assert np.mean(correct) >= 0.75, rows
    # The user's own split folders are the splits; grey reading gives one channel.
    own = tmp_path / "own"
    for split, count in (("train", 12), ("val", 3), ("test", 3)):
        make_pictures(own / split, per_class=count, seed=len(split))
    run_dir = train(logs, "--model", convnet, "--dataset", pictures, "--path", str(own), "--image_size", "12",
                    "--image_channels", "1", "--max_epochs", "1")
    assert len(predictions(str(run_dir))) == 9  # the 9 pictures of test/
    broken = tmp_path / "broken"
    (broken / "a").mkdir(parents=True)
    (broken / "b").mkdir(parents=True)
    make_pictures(tmp_path / "ok", per_class=2, seed=2)
    for name in ("a", "b"):
        shutil.copy(tmp_path / "ok" / "red" / "red0.png", broken / name / "fine.png")
    (broken / "b" / "bad.png").write_text("not an image")
    line = refused(logs, "--model", convnet, "--dataset", pictures, "--path", str(broken))
    assert "bad.png: not a readable image" in line


def test_numpy_arrays_train_for_classes_and_for_numbers(tmp_path: Path) -> None:
    arrays = one_made_from("dataset", "arrays")
    logs = tmp_path / "logs"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2, 4)).astype(np.float32)
    x[:, 0, 0] = 3.0  # constant in every example
    np.savez(tmp_path / "classes.npz", x=x, y=(x[:, 1].sum(axis=1) > 0).astype(np.int64))
    run_dir = train(logs, "--dataset", arrays, "--model", "mlp", "--path", str(tmp_path / "classes.npz"),
                    "--max_epochs", "30")
    rows = predictions(str(run_dir))
    assert np.mean([row["class"] == row["target"] for row in rows]) >= 0.9
    np.save(tmp_path / "inputs.npy", x)
    np.save(tmp_path / "numbers.npy", x[:, 1].sum(axis=1) * 10 + 100)
    run_dir = train(logs, "--dataset", arrays, "--model", "mlp", "--path", str(tmp_path / "inputs.npy"),
                    "--targets", str(tmp_path / "numbers.npy"), "--max_epochs", "1")
    assert json.loads((run_dir / "run.json").read_text())["dataset"] == arrays
    assert "prediction" in predictions(str(run_dir))[0]
    line = refused(logs, "--dataset", arrays, "--model", "mlp", "--path", str(tmp_path / "inputs.npy"))
    assert "--targets" in line


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


def test_every_run_records_the_code_packages_and_command_that_produced_it(tmp_path: Path) -> None:
    project = project_copy(tmp_path)  # a repository of its own: the test's edits never touch this one
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "--no-verify", "-m", "start")
    with (project / "trainer.py").open("a") as handle:
        handle.write("\n# an edit not committed yet\n")
    (project / "notes.txt").write_text("a new file, not tracked yet\n")
    (project / "data" / "table.bin").write_bytes(bytes(range(256)) * 4)  # new, binary: git's binary patch keeps it
    (project / "data" / "big.npy").write_bytes(b"\0" * 200_000)  # too large to copy: named instead
    run_dir = train(project / "logs", "--max_epochs", "1", "--limit_train_batches", "2", cwd=project)
    record = json.loads((run_dir / "provenance.json").read_text())
    head = git(project, "rev-parse", "HEAD").strip()
    assert record["git"]["commit"] == head and record["git"]["dirty"] is True
    import lightning
    import torch

    assert record["packages"]["torch"] == torch.__version__ and record["packages"]["lightning"] == lightning.__version__
    assert record["packages"]["pillow"] and record["python"] == ".".join(map(str, sys.version_info[:3]))
    assert record["command"].endswith("--max_epochs 1 --limit_train_batches 2") and record["host"]
    # The patch on the recorded commit gives back the code as it ran, new file included.
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True)
    subprocess.run(["git", "apply", str(run_dir / "uncommitted.patch")], cwd=clone, check=True)
    assert (clone / "trainer.py").read_text().endswith("# an edit not committed yet\n")
    assert (clone / "notes.txt").read_text() == "a new file, not tracked yet\n"
    assert (clone / "data" / "table.bin").read_bytes() == bytes(range(256)) * 4
    assert record["git"]["untracked_not_in_patch"] == ["data/big.npy"] and not (clone / "data" / "big.npy").exists()
    proc = run_script("predict.py", str(run_dir), cwd=project)
    assert f"code: commit {head[:12]} plus uncommitted changes" in proc.stdout
    # A project outside git says so in the record.
    shutil.rmtree(project / ".git")
    run_dir = train(project / "logs", "--max_epochs", "1", "--limit_train_batches", "1", cwd=project)
    record = json.loads((run_dir / "provenance.json").read_text())
    assert record["git"]["commit"] is None and "not a git repository" in record["git"]["note"]
