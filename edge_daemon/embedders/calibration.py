"""Calibrated unknown-thresholds, one per embedder configuration (backend and version, which names
the model, flip averaging, and for a fusion its members and weights).

Each is the lowest cosine threshold with at most 1% false accepts on the 1,100 impostor pairs of LFW
View 1 ``pairsDevTrain.txt``, with the daemon's detector and alignment, measured by
``bench/accuracy.py`` (README, "Embedders"). A configuration not listed here has no calibrated
threshold: ``edge-daemon calibrate`` measures one, and ``gallery.threshold`` sets it.
"""

from __future__ import annotations

SOURCE = "LFW View 1 pairsDevTrain.txt, FAR 1% (bench/accuracy.py)"

# fmt: off
THRESHOLDS: dict[tuple[str, str], float] = {
    ("dlib_onnx", "dlib_face_recognition_resnet_model_v1"): 0.908984,
    # dlib's own runtime, measured with 'edge-daemon calibrate' before the ONNX conversion existed:
    # the same value, as it should be for the same network.
    ("dlib_bin", "dlib_face_recognition_resnet_model_v1"): 0.908984,
    ("mobilefacenet", "mobilefacenet-human-models-3.0.4"): 0.359586,
    ("fused", "fused(dlib_onnx:dlib_face_recognition_resnet_model_v1*0.8100,mobilefacenet:mobilefacenet-human-models-3.0.4*0.1900)"): 0.790866,
    ("fused", "fused(dlib_onnx:dlib_face_recognition_resnet_model_v1*0.5000,mobilefacenet:mobilefacenet-human-models-3.0.4*0.5000)"): 0.625051,
    ("dlib_onnx", "dlib_face_recognition_resnet_model_v1+flip"): 0.911165,
    ("mobilefacenet", "mobilefacenet-human-models-3.0.4+flip"): 0.36029,
    ("fused", "fused(dlib_onnx:dlib_face_recognition_resnet_model_v1+flip*0.8100,mobilefacenet:mobilefacenet-human-models-3.0.4+flip*0.1900)"): 0.791828,
    ("fused", "fused(dlib_onnx:dlib_face_recognition_resnet_model_v1+flip*0.5000,mobilefacenet:mobilefacenet-human-models-3.0.4+flip*0.5000)"): 0.621645,
}
# fmt: on


def calibrated_threshold(name: str, version: str) -> tuple[float | None, str]:
    threshold = THRESHOLDS.get((name, version))
    if threshold is None:
        return None, f"not calibrated for {name} {version}: run 'edge-daemon calibrate' and set gallery.threshold"
    return threshold, SOURCE
