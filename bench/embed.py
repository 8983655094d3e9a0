"""Embedding benchmark: every backend x batch size x threads in faces/s, against this CPU's limit.

The limit is measured in the same run: a float32 matrix product (numpy/OpenBLAS) in GFLOP/s.
"ratio" = achieved GFLOP/s (faces/s x GFLOPs per face) / that limit. GFLOPs per face are counted
from the converted ONNX graphs (2 x multiply-adds of every Conv/Gemm/MatMul, x2 with flip
averaging); VGG16's convolutions cost 15.5 GFLOPs at 224x224 and scale with the input area.
dlib_bin (dlib's own runtime) runs in the same run as the reference for the ONNX backends.
VGG16 here has random weights (speed does not depend on them); each TFLite conversion is checked
against Keras on real faces (min cosine shown) as the daemon requires.

It also runs the daemon's EmbeddingWorker fed from a queue against the raw backend in a tight
loop at the same batch size (target: worker / raw >= 0.9).

  .venv/bin/python -m bench.embed              # batches 1, 8, 32; 1 and 2 threads; VGG16 at 64 px
  .venv/bin/python -m bench.embed --quick --json
"""

from __future__ import annotations

import json
import os
import queue
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench.common import DATA, argument_parser, matmul_gflops, timed  # noqa: E402
from edge_daemon.api import find_faces, load_image  # noqa: E402
from edge_daemon.config import DetectorConfig, EmbedderConfig, FusionMember, GalleryConfig  # noqa: E402
from edge_daemon.detectors import create_detector  # noqa: E402
from edge_daemon.embedders import create_local_embedder  # noqa: E402
from edge_daemon.embedders.vgg16 import Vgg16Embedder, save_vgg16_artefact  # noqa: E402
from edge_daemon.logs import configure_logging  # noqa: E402
from edge_daemon.messages import FaceSample, Shutdown  # noqa: E402
from edge_daemon.models.prepare.store import ModelStore  # noqa: E402
from edge_daemon.pipeline.embedding import EmbeddingWorker  # noqa: E402
from edge_daemon.recognition.matcher import Matcher  # noqa: E402

PHOTOS = DATA / "photos" / "group"
# label -> configuration; the GFLOPs of each come from its ONNX graphs.
BACKENDS = {
    "dlib_bin": EmbedderConfig(backend="dlib_bin"),
    "dlib_onnx": EmbedderConfig(backend="dlib_onnx", flip=False),
    "dlib_onnx +flip": EmbedderConfig(backend="dlib_onnx", flip=True),
    "dlib_onnx int8": EmbedderConfig(backend="dlib_onnx", flip=False, precision="int8"),
    "mobilefacenet": EmbedderConfig(backend="mobilefacenet", flip=False),
    "mobilefacenet +flip": EmbedderConfig(backend="mobilefacenet", flip=True),
    "fused (default)": EmbedderConfig(),
    "fused int8": EmbedderConfig(precision="int8"),
    "fused +flip": EmbedderConfig(members=[
        FusionMember(backend="dlib_onnx", weight=0.81, flip=True), FusionMember(backend="mobilefacenet", weight=0.19, flip=True),
    ]),
    "fused equal": EmbedderConfig(members=[
        FusionMember(backend="dlib_onnx", weight=0.5, flip=False), FusionMember(backend="mobilefacenet", weight=0.5, flip=False),
    ]),
}


def onnx_gflops(path: Path) -> float:
    """2 x the multiply-adds of every Conv, Gemm and MatMul of one face (batch 1)."""
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(path))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    model = shape_inference.infer_shapes(model)
    shapes = {
        value.name: [d.dim_value for d in value.type.tensor_type.shape.dim]
        for value in list(model.graph.value_info) + list(model.graph.output) + list(model.graph.input)
    }
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    macs = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            out, kernel = shapes[node.output[0]], weights[node.input[1]]
            macs += np.prod(out) * np.prod(kernel[1:])
        elif node.op_type in ("Gemm", "MatMul"):
            matrix = weights.get(node.input[1]) or shapes[node.input[1]]
            macs += np.prod(matrix)
    return 2 * float(macs) / 1e9


def backend_gflops(config: EmbedderConfig, store: ModelStore) -> float:
    models = {"dlib_onnx": "dlib_resnet", "dlib_bin": "dlib_resnet", "mobilefacenet": "mobilefacenet"}
    members = [config.member_config(m) for m in config.members] if config.backend == "fused" else [config]
    return sum(onnx_gflops(store.path(models[m.backend])) * (2 if m.flip_for(m.backend) else 1) for m in members)


def real_faces(aligner, count: int) -> list[np.ndarray]:
    """Aligned crops of the faces in the shared group photos, repeated to ``count``."""
    detector = create_detector(DetectorConfig(), separate_process=False)
    crops = []
    for path in sorted(PHOTOS.glob("*.jpg")):
        image = load_image(path)
        crops += [aligner.align(image, detection) for detection in find_faces(image, detector)]
    if not crops:
        raise SystemExit(f"no faces found under {PHOTOS}")
    return [crops[i % len(crops)] for i in range(count)]


def faces_per_second(embedder, crops: list[np.ndarray], batch: int, min_seconds: float) -> float:
    embedder.embed(crops[:batch])  # warm-up (allocations, graph tracing)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < min_seconds or done < 2 * batch:
        embedder.embed(crops[:batch])
        done += batch
    return done / (time.perf_counter() - started)


def worker_vs_raw(embedder, crops: list[np.ndarray], batch: int, total: int) -> dict:
    raw_seconds, _ = timed(lambda: [embedder.embed(crops[i : i + batch]) for i in range(0, total, batch)])
    faces, output = queue.Queue(), queue.Queue()
    for i in range(total):
        faces.put(FaceSample("bench", i, (0, 0, 1, 1), 1.0, crops[i % len(crops)], None, time.time(), time.time()))
    faces.put(Shutdown())
    worker = EmbeddingWorker(embedder, Matcher(GalleryConfig(), embedder), faces, output, batch, 50)
    worker_seconds, _ = timed(lambda: (worker.start(), worker.join()))
    return {
        "backend": f"{embedder.name}",
        "batch": batch,
        "faces": total,
        "raw_faces_per_s": round(total / raw_seconds, 2),
        "worker_faces_per_s": round(total / worker_seconds, 2),
        "worker_over_raw": round(raw_seconds / worker_seconds, 3),
    }


def vgg16_model_dir(size: int, directory: Path) -> Path:
    import keras

    from edge_daemon.training.trainer import build_head, vgg16_base

    keras.utils.set_random_seed(0)
    base = vgg16_base("none", size)
    embedding_head, _ = build_head(512, 10, 256)
    image = keras.Input((size, size, 3))
    model = keras.Model(image, embedding_head(keras.layers.GlobalAveragePooling2D()(base(image))))
    save_vgg16_artefact(model, directory, {"threshold": 0.5, "source": "benchmark, untrained"})
    return directory


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=[64], help="VGG16 input sizes ('--sizes' alone: none)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="ONNX Runtime / TFLite threads")
    parser.add_argument("--seconds", type=float, default=3.0, help="least time per measurement")
    parser.add_argument("--quick", action="store_true", help="batches 1 and 8, 1 thread, 1 s each")
    args = parser.parse_args()
    configure_logging("warning")
    quick = ([1, 8], [1], 1.0)
    batches, thread_counts, seconds = quick if args.quick else (args.batches, args.threads, args.seconds)
    sizes = args.sizes
    limit = matmul_gflops()
    store = ModelStore()
    rows, checks = [], {}

    def record(backend: str, threads: int, size: int, gflops: float, embedder, crops):
        for batch in batches:
            rate = faces_per_second(embedder, crops, batch, seconds)
            rows.append({
                "backend": backend, "threads": threads, "input": size, "batch": batch, "faces_per_s": round(rate, 2),
                "ms_per_face": round(1000 / rate, 2), "gflops_per_face": round(gflops, 3),
                "achieved_gflops": round(rate * gflops, 1), "ratio_to_limit": round(rate * gflops / limit, 3),
            })

    for label, config in BACKENDS.items():
        gflops = backend_gflops(config, store)
        for threads in thread_counts[:1] if config.backend == "dlib_bin" else thread_counts:
            embedder = create_local_embedder(config, threads)
            crops = real_faces(embedder.aligner, 64)
            size = getattr(embedder, "input_size", 150)
            record(label, threads, size if config.backend != "fused" else 0, gflops, embedder, crops)
    default = create_local_embedder(EmbedderConfig(), 1)
    default_crops = real_faces(default.aligner, 64)

    from edge_daemon.training.tflite_export import export_tflite

    with tempfile.TemporaryDirectory() as scratch:
        for size in sizes:
            model_dir = vgg16_model_dir(size, Path(scratch) / f"vgg{size}")
            keras_embedder = Vgg16Embedder(model_dir)
            crops = real_faces(keras_embedder.aligner, 64)
            gflops = 15.5 * (size / 224) ** 2
            record("vgg16 keras", 0, size, gflops, keras_embedder, crops)
            for runtime in ("tflite", "tflite_int8"):
                check = export_tflite(model_dir, np.stack(crops), runtime)
                checks[f"{runtime}@{size}"] = round(check["min_cosine"], 6)
                if check["passed"]:
                    threads = thread_counts[-1]
                    record(f"vgg16 {runtime}", threads, size, gflops, Vgg16Embedder(model_dir, runtime, threads), crops)
        worker_rows = [worker_vs_raw(default, default_crops, 8, 32 if args.quick else 64)]
        if sizes:
            size = 112 if 112 in sizes else sizes[0]
            model_dir = Path(scratch) / f"vgg{size}"
            embedder = Vgg16Embedder(model_dir)
            worker_rows.append(worker_vs_raw(embedder, real_faces(embedder.aligner, 64), 8, 64))

    print(f"CPU limit: numpy float32 matmul {limit:.1f} GFLOP/s (this run)")
    print(f"{'backend':>20} {'threads':>7} {'input':>5} {'batch':>5} {'faces/s':>8} {'ms/face':>7} {'GFLOP/face':>10} "
          f"{'GFLOP/s':>8} {'ratio':>6} {'x dlib_bin':>10}")
    reference = {row["batch"]: row["faces_per_s"] for row in rows if row["backend"] == "dlib_bin"}
    for row in rows:
        speedup = row["faces_per_s"] / reference[row["batch"]] if row["batch"] in reference else float("nan")
        row["speedup_vs_dlib_bin"] = round(speedup, 1)
        print(f"{row['backend']:>20} {row['threads']:>7} {row['input']:>5} {row['batch']:>5} {row['faces_per_s']:>8} "
              f"{row['ms_per_face']:>7} {row['gflops_per_face']:>10} {row['achieved_gflops']:>8} {row['ratio_to_limit']:>6} "
              f"{speedup:>10.1f}")
    print("TFLite vs Keras, min cosine on real faces:", ", ".join(f"{k} {v}" for k, v in checks.items()))
    for row in worker_rows:
        print(f"worker vs raw, {row['backend']} batch {row['batch']}: {row['worker_faces_per_s']} vs "
              f"{row['raw_faces_per_s']} faces/s = {row['worker_over_raw']:.3f}")
    if args.json:
        print(json.dumps({"limit_gflops": round(limit, 1), "runs": rows, "tflite_min_cosine": checks, "worker_vs_raw": worker_rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
