"""The report's two plots: F1 against throughput per architecture, and each family's KD effect."""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from swener.atomic import atomic_path
from swener.report.stats import _short

if TYPE_CHECKING:
    from matplotlib.figure import Figure


PLOTS = {"tradeoff": "f1_vs_throughput.png", "effects": "kd_effect.png"}


# ----- reading runs -----


def _colors(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def plot_tradeoff(summary: dict, path: Path) -> None:
    """F1 (in-domain test) against throughput: teacher, and per family one throughput (the median over all its
    runs, a bar for their range) with its plain and KD F1 (mean, and each seed), an arrow plain -> KD."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, NullFormatter

    test_set = summary["test_sets"][0]
    fig, ax = plt.subplots(figsize=(8.5, 5.2))
    handles = []
    families = summary["families"]
    for f, color in zip(families, _colors(len(families))):
        speed, where = f["cost"].get("tokens_per_second"), f["cost"].get("spread", {}).get("tokens_per_second")
        if speed is None:
            continue
        means = {}
        for mode, fill in (("plain", "none"), ("kd", color)):
            block = f["f1"][mode][test_set]
            if not block:
                continue
            seeds = [100 * run["f1"][test_set] for run in f["per_seed"][mode].values() if test_set in run["f1"]]
            ax.scatter([speed] * len(seeds), seeds, s=14, facecolors=fill, edgecolors=color, alpha=0.45,
                       linewidths=0.8, zorder=2)
            ax.scatter([speed], [100 * block["mean"]], s=80, facecolors=fill, edgecolors=color, linewidths=1.8,
                       zorder=3)
            means[mode] = (speed, 100 * block["mean"])
        if where and where["n"] > 1 and means:
            y = float(np.mean([m[1] for m in means.values()]))
            ax.errorbar([speed], [y], xerr=[[speed - where["low"]], [where["high"] - speed]], fmt="none",
                        ecolor=color, elinewidth=1, capsize=3, alpha=0.6, zorder=1)
        if "plain" in means and "kd" in means and means["plain"] != means["kd"]:
            ax.annotate("", xy=means["kd"], xytext=means["plain"], zorder=4,
                        arrowprops=dict(arrowstyle="-|>", color=color, lw=1.5, shrinkA=5, shrinkB=5))
        handles.append(Line2D([], [], color=color, marker="o", linestyle="-", label=f["label"]))
    teacher = summary["teacher"]
    if teacher and test_set in teacher["f1"] and teacher["cost"].get("tokens_per_second"):
        ax.scatter([teacher["cost"]["tokens_per_second"]], [100 * teacher["f1"][test_set]["micro_f1"]], marker="*",
                   s=220, color="black", zorder=5)
        handles.append(Line2D([], [], color="black", marker="*", markersize=12, linestyle="", label="teacher"))
    handles += [Line2D([], [], color="grey", marker="o", markerfacecolor="none", linestyle="", label="plain (mean)"),
                Line2D([], [], color="grey", marker="o", linestyle="", label="KD (mean)"),
                Line2D([], [], color="grey", marker="o", markersize=4, alpha=0.5, linestyle="",
                       label="one seed"),
                Line2D([], [], color="grey", marker="|", markersize=10, linestyle="-", alpha=0.6,
                       label="throughput range over runs")]
    ax.set_xscale("log")
    ax.margins(x=0.15, y=0.1)
    low, high = ax.get_xlim()
    if high / low < 30:  # at least a decade and a half, so that the log axis has labelled ticks
        centre = math.sqrt(low * high)
        ax.set_xlim(centre / math.sqrt(30), centre * math.sqrt(30))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("CPU throughput (tokens/s, log scale; students: median over all runs of the architecture)")
    ax.set_ylabel(f"F1 on {_short(test_set)} test (%)")
    ax.set_title(f"Accuracy against speed ({summary.get('profile', '?')} profile): arrows go from plain to KD")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    _save_figure(fig, path)


def plot_effects(summary: dict, path: Path) -> None:
    """The KD effect (ΔF1 with its interval) per family, one panel per test set, with seeds and sentences;
    a comparison without a verdict (degenerate) is drawn hollow and says so."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    test_sets = [t for t in summary["test_sets"] if any(t in f["kd_effect"] for f in summary["families"])]
    families = [f for f in summary["families"] if f["kd_effect"]]
    colors = {"benefits": "tab:green", "hurts": "tab:red", "no clear effect": "tab:gray"}
    if not test_sets:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.text(0.5, 0.5, "no paired plain and KD runs yet", ha="center", va="center")
        ax.axis("off")
        _save_figure(fig, path)
        return
    fig, axes = plt.subplots(1, len(test_sets), figsize=(3.8 * len(test_sets) + 2, 1.4 + 0.6 * len(families)),
                             sharey=True, squeeze=False, layout="constrained")
    positions = np.arange(len(families))[::-1]
    # one symmetric x range for all panels, so that effects compare across test sets
    span = 100 * max(max(abs(e["low"]), abs(e["high"])) for f in families for e in f["kd_effect"].values())
    span = 1.15 * span if span > 0 else 1.0
    in_domain = {f["corpus"] for f in summary["families"]}
    for ax, test_set in zip(axes[0], test_sets):
        sentences = sorted({f["kd_effect"][test_set]["sentences"] for f in families if test_set in f["kd_effect"]})
        for y, f in zip(positions, families):
            effect = f["kd_effect"].get(test_set)
            if effect is None:
                continue
            d, lo, hi = (100 * effect[k] for k in ("delta", "low", "high"))
            refused = bool(effect.get("refused"))
            color = "lightgray" if refused else colors[effect["verdict"]]
            ax.errorbar([d], [y], xerr=[[d - lo], [hi - d]], fmt="o", color=color, capsize=4, markersize=6, lw=1.6,
                        markerfacecolor="white" if refused else color)
            note = f"{effect['seeds']} seed{'s' if effect['seeds'] != 1 else ''}" + (
                f"; no verdict: {effect['refused']}" if refused else "")
            ax.annotate(note, (1, y), xycoords=("axes fraction", "data"), xytext=(-3, 7), textcoords="offset points",
                        ha="right", fontsize=7, color="dimgray")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(_short(test_set) + (" (in domain)" if _short(test_set) in in_domain else "")
                     + f"\n{'/'.join(map(str, sentences))} test sentences", fontsize=10)
        ax.set_xlabel("ΔF1 KD − plain (points)")
        ax.grid(True, axis="x", alpha=0.3)
        ax.set_ylim(-0.7, len(families) - 0.2)
        ax.set_xlim(-span, span)
    axes[0][0].set_yticks(positions, [f["label"] for f in families])
    handles = [Line2D([], [], color=c, marker="o", label=v) for v, c in colors.items()]
    handles.append(Line2D([], [], color="lightgray", marker="o", markerfacecolor="white",
                          label="no verdict (degenerate comparison)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=4, frameon=False)
    fig.suptitle(f"KD effect with {100 * summary['bootstrap']['confidence']:.0f} % bootstrap interval "
                 f"({summary.get('profile', '?')} profile)")
    _save_figure(fig, path)


def _save_figure(fig: Figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=130, bbox_inches="tight")
    finally:
        plt.close(fig)
