"""The run's PNG plots: confusion matrix, history, reliability, importance, and all four of a run."""
import numpy as np

from training.metrics import compute_metrics
from training.plots import plot_confusion_matrix, plot_history, plot_importance, plot_reliability, write_run_plots

PNG = b"\x89PNG\r\n\x1a\n"
HISTORY = {"loss": [1.2, 1.0, 0.9], "val_loss": [1.3, 1.1, 1.05], "accuracy": [0.4, 0.5, 0.55],
           "val_accuracy": [0.38, 0.45, 0.5]}
RANKED = [{"feature": "signal", "importance": 0.8, "std": 0.01}, {"feature": "noise", "importance": 0.0, "std": 0.0},
          {"feature": "state", "importance": 0.0, "std": 0.0}]


def toy_probs(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random 7-class probabilities and random labels."""
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.full(7, 0.5), size=n), rng.integers(0, 7, n)


def test_plots_are_written(tmp_path):
    cm = [[5, 1, 0, 0, 0, 0, 0], [2, 8, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]] + [[0] * 7] * 4
    cm_path = plot_confusion_matrix(cm, tmp_path / "cm.png")
    history_path = plot_history(HISTORY, tmp_path / "history.png", best_epoch=3)
    for path in (cm_path, history_path):
        assert path.read_bytes()[:8] == PNG
        assert path.stat().st_size > 5_000


def test_reliability_plot_is_a_png(tmp_path):
    probs, labels = toy_probs()
    path = plot_reliability(probs, labels, tmp_path / "reliability.png")
    assert path.read_bytes()[:8] == PNG


def test_importance_plot_is_a_png(tmp_path):
    path = plot_importance(RANKED, tmp_path / "importance.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_run_plots_are_the_four_pngs_of_a_run(tmp_path):
    probs, labels = toy_probs(n=300)
    metrics = {"test": compute_metrics(labels, probs.argmax(axis=1)), "permutation_importance": RANKED}
    paths = write_run_plots(tmp_path, metrics=metrics, history=HISTORY, best_epoch=None, test_probs=probs,
                            y_test=labels)
    assert [p.name for p in paths] == ["confusion_matrix.png", "history.png", "reliability.png", "importance.png"]
    assert (tmp_path / "reliability.png").is_file() and (tmp_path / "importance.png").is_file()
    assert all(p.read_bytes()[:8] == PNG for p in paths)


def test_titles_name_the_run_and_data_ticks_are_whole_epochs_and_empty_columns_are_a_note(tmp_path, monkeypatch):
    import training.plots as plots

    figures = {}
    original = plots._save

    def keep_texts(fig, path):
        texts = [t.get_text() for ax in fig.axes for t in (ax.title, *ax.texts)]
        figures[path.name] = {"texts": [*texts, *(t.get_text() for t in fig.texts),
                                        fig._suptitle.get_text() if fig._suptitle else ""],
                              "xticks": [t for ax in fig.axes for t in ax.get_xticks()],
                              "bars": [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]}
        return original(fig, path)

    monkeypatch.setattr(plots, "_save", keep_texts)
    probs, labels = toy_probs(n=300)
    ranked = [*RANKED, {"feature": "bc_util", "importance": 0.0, "std": 0.0, "empty": True}]
    metrics = {"test": compute_metrics(labels, probs.argmax(axis=1)), "permutation_importance": ranked}
    subject = plots.plot_subject("r9", ["/data/a.csv.gz", "s3://b/k/c.parquet"])
    assert subject == "run r9 · a.csv.gz, c.parquet"
    assert plots.plot_subject(None, None) == "model without a run id · synthetic sample"
    write_run_plots(tmp_path, metrics=metrics, history={k: v * 2 for k, v in HISTORY.items()}, best_epoch=2,
                    test_probs=probs, y_test=labels, subject=subject)
    assert set(figures) == {"confusion_matrix.png", "history.png", "reliability.png", "importance.png"}
    for name, seen in figures.items():
        assert any(subject in text for text in seen["texts"]), name
    assert all(float(t).is_integer() for t in figures["history.png"]["xticks"])
    importance = figures["importance.png"]
    assert "bc_util" not in importance["bars"] and "signal" in importance["bars"]
    assert any("Left out, empty in every row measured (1): bc_util" in t for t in importance["texts"])
