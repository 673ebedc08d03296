"""`scalelab train`."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from scalelab.cli._app import JsonFlag, app, emit


@app.command("train")
def train_command(
    model: Annotated[str, typer.Argument(help="Preset name or spec JSON file.")],
    dataset: Annotated[str, typer.Option(help="cifar10-mini, cifar10, cifar10-3class, cifar100, imagefolder:PATH.")] = "cifar10-mini",
    data_dir: Annotated[Optional[str], typer.Option(help="Data root (default: $SCALELAB_DATA, then the user cache).")] = None,
    download: Annotated[bool, typer.Option("--download", help="Fetch missing official archives.")] = False,
    epochs: Annotated[Optional[float], typer.Option(help="Budget in epochs (default 10 when no other budget).")] = None,
    max_images: Annotated[Optional[int], typer.Option(help="Budget in training images.")] = None,
    max_seconds: Annotated[Optional[float], typer.Option(help="Budget in seconds of training.")] = None,
    recipe: Annotated[Optional[str], typer.Option(help="A named recipe (scalelab.recipes: fast, small-data, frontier); the options below override it.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="[default: 128]")] = None,
    optimizer: Annotated[Optional[str], typer.Option(help="adam or sgd (Nesterov). [default: adam]")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (default 1e-3 Adam, 0.1*batch/256 SGD).")] = None,
    weight_decay: Annotated[Optional[float], typer.Option(help="[default: 5e-05]")] = None,
    warmup: Annotated[Optional[float], typer.Option(help="Fraction of the budget for linear warm-up. [default: 0.05]")] = None,
    schedule: Annotated[Optional[str], typer.Option(help="cosine, linear or constant after warm-up. [default: cosine]")] = None,
    label_smoothing: Annotated[Optional[float], typer.Option(help="[default: 0]")] = None,
    augment: Annotated[Optional[str], typer.Option(help="affine (rotation/shift/zoom/flip), crop or none. [default: affine]")] = None,
    crop_padding: Annotated[Optional[int], typer.Option(help="Pixels of padding for --augment crop. [default: 4]")] = None,
    tta: Annotated[Optional[bool], typer.Option("--tta/--no-tta", help="Flip test-time augmentation. [default: off]")] = None,
    whiten: Annotated[Optional[bool], typer.Option("--whiten/--no-whiten", help="Frozen patch-whitening first layer. [default: off]")] = None,
    ema: Annotated[Optional[float], typer.Option(help="Evaluate an EMA of the weights with this decay per step. [default: off]")] = None,
    lookahead: Annotated[Optional[bool], typer.Option("--lookahead/--no-lookahead", help="Lookahead: pull the weights back to a slow average every 5 steps. [default: off]")] = None,
    identity_init: Annotated[Optional[bool], typer.Option("--identity-init/--no-identity-init", help="Start each convolution after the first as the identity on its inputs. [default: off]")] = None,
    tta_shift: Annotated[Optional[int], typer.Option(help="With --tta, also average views shifted this many pixels. [default: 0]")] = None,
    tta_each_epoch: Annotated[Optional[bool], typer.Option("--tta-each-epoch/--tta-at-end", help="With --tta, average the views in the validation after every epoch, or only after the last. [default: each epoch]")] = None,
    alternate_flip: Annotated[Optional[bool], typer.Option("--alternate-flip/--no-alternate-flip", help="With --augment crop, mirror each image in every other epoch instead of at random. [default: off]")] = None,
    dropout: Annotated[Optional[float], typer.Option(help="Override the head dropout.")] = None,
    drop_path: Annotated[Optional[float], typer.Option(help="Override the stochastic-depth rate.")] = None,
    width: Annotated[float, typer.Option(help="Width multiplier on the model's channels.")] = 1.0,
    depth: Annotated[float, typer.Option(help="Depth multiplier on the model's layers.")] = 1.0,
    resolution: Annotated[Optional[int], typer.Option(min=1, help="Input size in px (default: the model's).")] = None,
    val_fraction: Annotated[float, typer.Option(help="Share of each training class held out for validation.")] = 0.1,
    train_fraction: Annotated[float, typer.Option(help="Share of each class's other training images to train on.")] = 1.0,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    amp: Annotated[Optional[bool], typer.Option("--amp/--no-amp", help="bfloat16 autocast (default: on CUDA only).")] = None,
    test: Annotated[bool, typer.Option("--test/--no-test", help="Evaluate the test split once at the end.")] = True,
    out: Annotated[Optional[str], typer.Option(help="Write the JSON result to this file.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Train one model with the short-trial trainer and report its accuracy curve."""
    from scalelab.arch.zoo import make_spec
    from scalelab.cost import check_fits
    from scalelab.data import load_dataset, split_validation
    from scalelab.device import announce_threads, pick_device
    from scalelab.files import check_writable_file, write_text_atomic
    from scalelab.train import TrainConfig, train

    # Everything a user can get wrong is checked before the data is loaded and before any training.
    if out:
        check_writable_file(out, what="--out")
    budgets = dict(epochs=epochs, max_images=max_images, max_seconds=max_seconds)
    if all(v is None for v in budgets.values()):
        budgets["epochs"] = 10.0
    elif epochs is None:
        budgets["epochs"] = float("inf")
    given = dict(batch_size=batch_size, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
                 warmup=warmup, schedule=schedule, label_smoothing=label_smoothing, augment=augment,
                 crop_padding=crop_padding, tta=tta, whiten=whiten, ema=ema, lookahead=lookahead,
                 identity_init=identity_init, tta_shift=tta_shift, tta_each_epoch=tta_each_epoch,
                 alternate_flip=alternate_flip, dropout=dropout,
                 drop_path=drop_path, amp=amp)
    config = TrainConfig(**budgets, **{k: v for k, v in given.items() if v is not None}, seed=seed,
                         recipe=recipe)
    dev = pick_device(device)
    data = load_dataset(dataset, data_dir, download=download)
    spec = make_spec(model, num_classes=data.num_classes, resolution=resolution, width=width, depth=depth)
    check_fits(spec, batch_size=config.batch_size, training=True, device=dev)
    splits = split_validation(data, val_fraction, seed, train_fraction)
    announce_threads(dev, 1, progress=not as_json)  # as a study does: oversubscribed cores crawl
    result = train(spec, splits, config, device=dev, evaluate_test=test, progress=not as_json)
    record = result.to_dict()
    if out:
        write_text_atomic(out, json.dumps(record, indent=2) + "\n")
    lines = [f"{spec.name} on {data.name} ({dev}): validation accuracy {100 * result.val_acc:.2f}% "
             f"(val split, {len(splits.val[1]):,} images)"]
    if result.test_acc is not None:
        lines.append(f"test accuracy {100 * result.test_acc:.2f}% (test split, {len(splits.test[1]):,} images)")
    lines.append(f"{result.images_seen:,} training images in {result.train_s:.1f} s of training "
                 f"({result.images_per_s:,.0f} images/s); {result.wall_s:.1f} s in all")
    text = "\n".join(lines)
    emit(record, as_json, text)
