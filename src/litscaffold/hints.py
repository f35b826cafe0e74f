"""The commands `add` prints next: they must work as printed, so a new model is paired with a dataset it can
learn (a convnet needs images, not the default regression data) and a dataset that reads the user's files says
which flags to fill in."""

from __future__ import annotations

from .project import Project

# What each blueprint learns from and offers (the blueprints' own `tasks` and DataInfo, kept in step by a test).
IMAGE_DATASETS = ("synthetic-images", "mnist", "image-folder")
IMAGE_MODELS = ("convnet", "autoencoder")
USER_FILES = {  # dataset blueprints that read the user's files: the flags to give, with placeholders
    "csv": "--path your_table.csv --target COLUMN [--task classification]",
    "image-folder": "--path YOUR_IMAGE_FOLDER",
    "arrays": "--path your_arrays.npz",
    "mnist": "--download true",
}


def next_steps(project: Project, kind: str, name: str, blueprint: str) -> list[str]:
    """The commands to try the new component, in order."""
    components = project.components()
    if kind == "model":
        if blueprint not in IMAGE_MODELS:
            return [f"python trainer.py --model {name}"]
        images = [c.name for c in components if c.kind == "dataset" and c.blueprint in IMAGE_DATASETS]
        if images:
            return [f"python trainer.py --model {name} --dataset {images[0]}{_files_flags(project, images[0])}"]
        return ["litscaffold add dataset images --blueprint synthetic-images",
                f"python trainer.py --model {name} --dataset images"]
    model = "mlp"
    if blueprint in IMAGE_DATASETS:
        convnets = [c.name for c in components if c.kind == "model" and c.blueprint == "convnet"]
        if not convnets:
            return ["litscaffold add model convnet --blueprint convnet",
                    f"python trainer.py --model convnet --dataset {name}{_flags(blueprint)}"]
        model = convnets[0]
    elif blueprint == "synthetic-regression":
        return [f"python trainer.py --dataset {name}"]
    return [f"python trainer.py --model {model} --dataset {name}{_flags(blueprint)}"]


def _flags(blueprint: str) -> str:
    return f" {USER_FILES[blueprint]}" if blueprint in USER_FILES else ""


def _files_flags(project: Project, dataset: str) -> str:
    blueprint = next((c.blueprint for c in project.components() if c.kind == "dataset" and c.name == dataset), "")
    return _flags(blueprint)
