"""Serve a model folder with Paddle Inference (oneDNN): load once, a batch of crops in, probabilities out.

Paddle Inference runs the exported net at ~2.3 ms per crop here, against ~8.7 ms for the
eager net. One predictor serves one thread at a time (a lock), so a gunicorn worker may
share it between its threads.

On a CPU that does bfloat16 arithmetic (AMX's tiles or AVX512_BF16: `ml.runtime.computes_bfloat16`), oneDNN
runs the net in bfloat16: a crop and its mirror image in 1.6 ms against 3.8 ms in float32 (2-core Xeon with
AMX, one thread, `python bench/bench_inference.py`), with the same expression predicted for all but 12 of
FER2013 PrivateTest's 3,589 faces (v5: 71.5% right either way).

A folder's model.json may say how its net is to be read (`InferenceSettings`): each crop and its
mirror image in one batch, their logits averaged (faces are about symmetric; FER2013 PrivateTest
+1.1 points for v4), and the logits divided by a temperature fitted on PublicTest
(`python -m ml.calibrate`), so a confidence of 70% is right about 70% of the time.
"""

import dataclasses
import hashlib
import json
import threading
from pathlib import Path

import numpy as np
import paddle
import paddle.inference

from ml.calibration import softmax
from ml.labels import EXPRESSIONS, INPUT_SIZE
from ml.model_folder import (
    CHECKSUMS,
    INFERENCE_GRAPH,
    INFERENCE_PARAMETERS,
    InferenceSettings,
    ModelFolderError,
    check_files,
    inference_settings,
    read_metadata,
)
from ml.runtime import computes_bfloat16, cpu_features

# The x86 instruction sets whose presence changes which oneDNN kernels run the net.
ONEDNN_KERNEL_FEATURES = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile"})


class ModelLoadError(RuntimeError):
    """A model folder that is missing, incomplete or corrupt; the message says which and why."""


class Predictor:
    def __init__(self, predictor: paddle.inference.Predictor, metadata: dict, *, computes_in: str):
        self._predictor = predictor
        self.computes_in = computes_in  # the net's arithmetic: "bfloat16" or "float32"
        self._lock = threading.Lock()
        self.metadata = metadata
        self.version: str = metadata["version"]
        self.settings: InferenceSettings = inference_settings(metadata)

    @classmethod
    def load(cls, model_dir: str | Path, *, threads: int = 1, bfloat16: bool | None = None) -> "Predictor":
        """The folder's net, ready; in bfloat16 where the CPU does bfloat16 arithmetic (or `bfloat16=False`: in
        float32 anyway). Paddle cannot be asked what it computes in, and without that arithmetic it would either
        stay in float32 or emulate bfloat16 slowly: `bfloat16=True` there is a ValueError."""
        model_dir = Path(model_dir)
        graph, params = model_dir / INFERENCE_GRAPH, model_dir / INFERENCE_PARAMETERS
        try:
            metadata = read_metadata(model_dir)
            for path in (graph, params):
                if not path.is_file():
                    raise ModelFolderError(f"{model_dir}: {path.name} is missing")
            check_files(model_dir, metadata, [INFERENCE_GRAPH, INFERENCE_PARAMETERS])
        except ModelFolderError as error:
            raise ModelLoadError(str(error)) from error
        config = paddle.inference.Config(str(graph), str(params))
        config.disable_glog_info()
        config.enable_onednn()
        config.set_cpu_math_library_num_threads(threads)
        if bfloat16 is None:
            bfloat16 = computes_bfloat16()
        elif bfloat16 and not computes_bfloat16():
            raise ValueError("bfloat16 needs a CPU that computes in it (AMX or AVX512_BF16), which this one does not")
        if bfloat16:
            config.enable_onednn_bfloat16()
        try:
            predictor = cls(
                paddle.inference.create_predictor(config), metadata, computes_in="bfloat16" if bfloat16 else "float32"
            )
            # One real run proves the files are whole; corrupt parameters fail here, not on a user's request.
            predictor.predict(np.zeros((1, INPUT_SIZE, INPUT_SIZE), np.uint8))
        except (RuntimeError, ValueError, OSError) as error:
            raise ModelLoadError(f"{model_dir}: cannot load the model ({error})") from error
        return predictor

    @property
    def fingerprint(self) -> str | None:
        """A SHA-256 that changes with anything that changes what `predict` returns: the net's files as model.json
        records them, how the folder says to read them, the arithmetic, and what runs it (Paddle's version, and
        the CPU's vector instructions, by which oneDNN chooses its kernels and so rounds differently). None for a
        folder that records no checksums (written before they were), whose files could change unseen."""
        served = {name: self.metadata.get(CHECKSUMS, {}).get(name) for name in (INFERENCE_GRAPH, INFERENCE_PARAMETERS)}
        if None in served.values():
            return None
        identity = {
            "files": served,
            "inference": dataclasses.asdict(self.settings),
            "computes_in": self.computes_in,
            "paddle": paddle.__version__,
            "cpu": sorted(cpu_features() & ONEDNN_KERNEL_FEATURES),
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()

    def predict(self, crops: np.ndarray) -> np.ndarray:
        """(N, INPUT_SIZE, INPUT_SIZE) uint8 grey crops -> (N, 7) float32 probabilities, EXPRESSIONS order."""
        return softmax(self.logits(crops), self.settings.temperature)

    def logits(self, crops: np.ndarray) -> np.ndarray:
        """The net's (N, 7) logits for the crops, averaged with their mirror images' when the folder says so;
        not yet divided by the temperature."""
        if crops.ndim != 3 or crops.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"crops must be (N, {INPUT_SIZE}, {INPUT_SIZE}), got {crops.shape}")
        if len(crops) == 0:
            return np.empty((0, len(EXPRESSIONS)), np.float32)
        pixels = (crops.astype(np.float32) / 255.0)[:, None]
        if self.settings.mirror:
            pixels = np.concatenate([pixels, pixels[..., ::-1]])  # one run for both: a batch is cheaper than two
        with self._lock:
            input_handle = self._predictor.get_input_handle(self._predictor.get_input_names()[0])
            input_handle.reshape(pixels.shape)
            input_handle.copy_from_cpu(np.ascontiguousarray(pixels))
            self._predictor.run()
            output_handle = self._predictor.get_output_handle(self._predictor.get_output_names()[0])
            logits = output_handle.copy_to_cpu()
        if self.settings.mirror:
            logits = (logits[: len(crops)] + logits[len(crops) :]) / 2
        return logits
