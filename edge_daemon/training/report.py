"""The trainer's evaluation report: metrics as JSON and text, plots as PNG, an index.md linking them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def classification_metrics(truth: np.ndarray, predicted: np.ndarray, names: list[str]) -> dict:
    """Accuracy, confusion matrix (rows: true class) and per-class precision/recall/F1/support."""
    classes = len(names)
    confusion = np.zeros((classes, classes), dtype=int)
    np.add.at(confusion, (truth, predicted), 1)
    per_class = {}
    for i, name in enumerate(names):
        true_positive = confusion[i, i]
        predicted_count, support = confusion[:, i].sum(), confusion[i, :].sum()
        precision = true_positive / predicted_count if predicted_count else 0.0
        recall = true_positive / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": float(precision), "recall": float(recall), "f1": float(f1), "support": int(support)}
    macro = {key: float(np.mean([c[key] for c in per_class.values()])) for key in ("precision", "recall", "f1")}
    return {
        "accuracy": float((truth == predicted).mean()) if len(truth) else 0.0,
        "test_images": int(len(truth)),
        "per_class": per_class,
        "macro": macro,
        "confusion_matrix": confusion.tolist(),
    }


def classification_text(metrics: dict) -> str:
    width = max(12, *(len(name) for name in metrics["per_class"]))
    lines = [f"{'':<{width}}  precision  recall  f1-score  support"]
    for name, row in metrics["per_class"].items():
        lines.append(f"{name:<{width}}  {row['precision']:9.3f}  {row['recall']:6.3f}  {row['f1']:8.3f}  {row['support']:7d}")
    macro = metrics["macro"]
    lines.append("")
    lines.append(f"{'macro avg':<{width}}  {macro['precision']:9.3f}  {macro['recall']:6.3f}  {macro['f1']:8.3f}  {metrics['test_images']:7d}")
    lines.append(f"{'accuracy':<{width}}  {'':9}  {'':6}  {metrics['accuracy']:8.3f}  {metrics['test_images']:7d}")
    return "\n".join(lines) + "\n"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(confusion: np.ndarray, names: list[str], path: Path) -> None:
    plt = _pyplot()
    size = max(5, 0.45 * len(names) + 3)
    figure, axes = plt.subplots(figsize=(size, size))
    image = axes.imshow(confusion, cmap="Blues")
    axes.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    axes.set_yticks(range(len(names)), names, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    threshold = confusion.max() / 2 if confusion.size else 0
    for (row, column), value in np.ndenumerate(confusion):
        if value:
            axes.text(column, row, str(value), ha="center", va="center", fontsize=7, color="white" if value > threshold else "black")
    figure.colorbar(image, ax=axes, fraction=0.046)
    axes.set_title("Confusion matrix (test set)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_curves(history: dict, path: Path) -> None:
    """Loss and accuracy per epoch across both phases, train vs validation, phase boundary marked."""
    plt = _pyplot()
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(11, 4))
    boundary = len(history["phase1"].get("loss", []))
    for axes, metric in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        for prefix, label in (("", "train"), ("val_", "validation")):
            values = history["phase1"].get(prefix + metric, []) + history["phase2"].get(prefix + metric, [])
            axes.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=label)
        if history["phase2"].get("loss"):
            axes.axvline(boundary + 0.5, color="grey", linestyle="--", label="phase 2: fine-tuning starts")
        axes.set_xlabel("epoch")
        axes.set_title(metric)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_per_class(per_class: dict, path: Path) -> None:
    plt = _pyplot()
    names = list(per_class)
    positions = np.arange(len(names))
    figure, axes = plt.subplots(figsize=(max(6, 0.6 * len(names) + 2), 4.5))
    for offset, key in zip((-0.27, 0, 0.27), ("precision", "recall", "f1")):
        axes.bar(positions + offset, [per_class[n][key] for n in names], width=0.27, label=key)
    axes.set_xticks(positions, names, rotation=60, ha="right", fontsize=8)
    axes.set_ylim(0, 1.05)
    axes.set_title("Per-class precision, recall and F1 (test set)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_open_set(genuine: np.ndarray, impostor: np.ndarray, threshold: float, path: Path) -> None:
    """ROC (true accepts vs false accepts) and the two score distributions with the threshold."""
    plt = _pyplot()
    figure, (roc_axes, histogram_axes) = plt.subplots(1, 2, figsize=(11, 4))
    thresholds = np.unique(np.concatenate([genuine, impostor, [threshold]]))[::-1]
    far = [(impostor >= t).mean() for t in thresholds]
    tar = [(genuine >= t).mean() for t in thresholds]
    roc_axes.plot(far, tar)
    roc_axes.plot([(impostor >= threshold).mean()], [(genuine >= threshold).mean()], "o", label=f"threshold {threshold:.3f}")
    roc_axes.set_xscale("symlog", linthresh=1e-3)
    roc_axes.set_xlabel("false accept rate (impostor pairs)")
    roc_axes.set_ylabel("true accept rate (genuine pairs)")
    roc_axes.set_title("Open-set ROC (test pairs, cosine)")
    roc_axes.grid(alpha=0.3)
    roc_axes.legend()
    bins = np.linspace(min(genuine.min(), impostor.min()), 1.0, 50)
    histogram_axes.hist(impostor, bins=bins, alpha=0.6, density=True, label=f"impostor ({len(impostor)})")
    histogram_axes.hist(genuine, bins=bins, alpha=0.6, density=True, label=f"genuine ({len(genuine)})")
    histogram_axes.axvline(threshold, color="black", linestyle="--", label="threshold")
    histogram_axes.set_xlabel("cosine similarity")
    histogram_axes.set_title("Score distributions")
    histogram_axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(
    directory: Path,
    metrics: dict,
    history: dict,
    names: list[str],
    genuine: np.ndarray,
    impostor: np.ndarray,
    threshold: float,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False), encoding="utf-8")
    text = classification_text(metrics)
    (directory / "classification_report.txt").write_text(text, encoding="utf-8")
    plot_confusion(np.array(metrics["confusion_matrix"]), names, directory / "confusion_matrix.png")
    plot_curves(history, directory / "training_curves.png")
    plot_per_class(metrics["per_class"], directory / "per_class.png")
    if len(genuine) and len(impostor):
        plot_open_set(genuine, impostor, threshold, directory / "open_set_roc.png")
    worst = min(metrics["per_class"].items(), key=lambda item: item[1]["f1"])
    open_set = metrics.get("open_set", {})
    index = f"""# Training report

- **Test accuracy: {metrics['accuracy']:.1%}** on {metrics['test_images']} test images, {len(names)} identities
  (macro F1 {metrics['macro']['f1']:.3f}). Details: [metrics.json](metrics.json),
  [classification_report.txt](classification_report.txt).
- [confusion_matrix.png](confusion_matrix.png): rows are true identities; off-diagonal cells are the confusions.
- [per_class.png](per_class.png): precision, recall and F1 per identity; the weakest is {worst[0]} (F1 {worst[1]['f1']:.2f}).
- [training_curves.png](training_curves.png): loss and accuracy per epoch, train vs validation, with the start of
  fine-tuning marked; a widening gap between the curves means overfitting.
- [open_set_roc.png](open_set_roc.png): genuine vs impostor cosine scores on test pairs; the unknown-threshold
  {threshold:.4f} (calibrated on validation pairs) gives a test false-accept rate of {_percent(open_set.get('test_far'))}
  and false-reject rate of {_percent(open_set.get('test_frr'))}.

```
{text}```
"""
    (directory / "index.md").write_text(index, encoding="utf-8")


def _percent(value) -> str:
    return "n/a" if value is None else f"{value:.1%}"
