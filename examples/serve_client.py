"""Send one image to a Lotus-D server and save the prediction: `lotus-serve run`, or Triton serving a
repository from `lotus-serve repo` (same model name and tensors). Needs tritonclient[http].

    python examples/serve_client.py photo.jpg --url 127.0.0.1:8000 --out depth.npy
"""

import argparse

import numpy as np
import tritonclient.http as http

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("image")
parser.add_argument("--url", default="127.0.0.1:8000", help="the server's HTTP endpoint")
parser.add_argument("--model", default="lotus_depth", help="lotus_depth or lotus_normal")
parser.add_argument("--out", default="prediction.npy")
args = parser.parse_args()

encoded = http.InferInput("encoded", [1, 1], "BYTES")  # one encoded image (JPEG, PNG, ...) per request
with open(args.image, "rb") as f:
    encoded.set_data_from_numpy(np.array([[f.read()]], dtype=object))
output = args.model.split("_", 1)[1]  # the output tensor is named after the task
values = http.InferenceServerClient(args.url).infer(args.model, [encoded]).as_numpy(output)[0]  # at the image's size
np.save(args.out, values)
print(f"{args.image}: {output} {values.shape}, {values.min():.3f}..{values.max():.3f} -> {args.out}")
