"""A dense network (softmax regression or an MLP) in numpy, read from the registry's model.json.

docs/protocol.md, "Weights download": model.json is a TensorFlow.js layers-model file whose
`modelTopology.config.layers` lists the layers and whose `weightsManifest[0].weights` names each
weight tensor (name, shape, float32) in the order they are concatenated, as little-endian float32,
in weights.bin. This device understands Sequential models of Dense layers (activations relu,
sigmoid, tanh, linear, softmax on the last layer) and refuses others.
"""
import numpy as np

ACTIVATIONS = {"relu", "linear", "sigmoid", "tanh", "softmax"}


class DenseNet:
    def __init__(self, model_json):
        topo = model_json["modelTopology"]
        layers = topo["config"]["layers"] if isinstance(topo["config"], dict) else topo["config"]
        self.layers = []
        for layer in layers:
            if layer["class_name"] != "Dense":
                raise ValueError(f"this device trains Dense layers only, not {layer['class_name']}")
            act = layer["config"].get("activation", "linear")
            if act not in ACTIVATIONS:
                raise ValueError(f"unsupported activation {act}")
            self.layers.append({"name": layer["config"]["name"], "activation": act, "bias": layer["config"].get("use_bias", True)})
        if self.layers[-1]["activation"] != "softmax":
            raise ValueError("the last layer must be softmax (a classifier)")
        self.manifest = [w for group in model_json["weightsManifest"] for w in group["weights"]]
        for w in self.manifest:
            if w.get("dtype", "float32") != "float32":
                raise ValueError(f"weight {w['name']} is {w['dtype']}, not float32")
        self.sizes = [int(np.prod(w["shape"])) for w in self.manifest]
        self.length = sum(self.sizes)

    def unflatten(self, flat):
        """Flat float32 vector -> list of (kernel, bias) per layer, in manifest order."""
        out, at = {}, 0
        for w, size in zip(self.manifest, self.sizes):
            out[w["name"]] = flat[at:at + size].reshape(w["shape"]).astype(np.float64)
            at += size
        return [(out[f"{l['name']}/kernel"], out.get(f"{l['name']}/bias")) for l in self.layers]

    def flatten(self, params):
        by_name = {}
        for l, (k, b) in zip(self.layers, params):
            by_name[f"{l['name']}/kernel"] = k
            if b is not None:
                by_name[f"{l['name']}/bias"] = b
        return np.concatenate([by_name[w["name"]].ravel() for w in self.manifest]).astype(np.float32)

    def forward(self, params, x):
        acts = [x]
        for l, (k, b) in zip(self.layers, params):
            z = acts[-1] @ k + (b if b is not None else 0)
            a = l["activation"]
            if a == "relu":
                z = np.maximum(z, 0)
            elif a == "sigmoid":
                z = 1 / (1 + np.exp(-z))
            elif a == "tanh":
                z = np.tanh(z)
            elif a == "softmax":
                z = np.exp(z - z.max(axis=1, keepdims=True))
                z /= z.sum(axis=1, keepdims=True)
            acts.append(z)
        return acts

    def gradients(self, params, x, onehot):
        """Mean categorical cross-entropy of a batch and its gradient for every (kernel, bias)."""
        acts = self.forward(params, x)
        p = acts[-1]
        loss = float(-np.mean(np.sum(onehot * np.log(np.clip(p, 1e-7, 1.0)), axis=1)))
        grads = [None] * len(params)
        dz = (p - onehot) / x.shape[0]  # softmax + cross-entropy
        for i in range(len(params) - 1, -1, -1):
            k, b = params[i]
            grads[i] = (acts[i].T @ dz, dz.sum(axis=0) if b is not None else None)
            if i == 0:
                break
            da = dz @ k.T
            a, out = self.layers[i - 1]["activation"], acts[i]
            if a == "relu":
                da = da * (out > 0)
            elif a == "sigmoid":
                da = da * out * (1 - out)
            elif a == "tanh":
                da = da * (1 - out ** 2)
            dz = da
        return loss, grads

    def accuracy(self, params, x, y):
        return float(np.mean(np.argmax(self.forward(params, x)[-1], axis=1) == y))


class Optimizer:
    """The plan's client optimizer: sgd, momentum (0.9) or adam (0.9, 0.999, eps 1e-7)."""

    def __init__(self, name, lr):
        self.name, self.lr, self.t, self.state = name, lr, 0, {}

    def step(self, params, grads):
        self.t += 1
        out = []
        for i, ((k, b), (gk, gb)) in enumerate(zip(params, grads)):
            new = []
            for j, (w, g) in enumerate(((k, gk), (b, gb))):
                if w is None:
                    new.append(None)
                    continue
                key = (i, j)
                if self.name == "sgd":
                    w = w - self.lr * g
                elif self.name == "momentum":
                    v = self.state.get(key, np.zeros_like(w)) * 0.9 + g
                    self.state[key] = v
                    w = w - self.lr * v
                elif self.name == "adam":
                    m, v = self.state.get(key, (np.zeros_like(w), np.zeros_like(w)))
                    m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
                    self.state[key] = (m, v)
                    mh, vh = m / (1 - 0.9 ** self.t), v / (1 - 0.999 ** self.t)
                    w = w - self.lr * mh / (np.sqrt(vh) + 1e-7)
                else:
                    raise ValueError(f"optimizer {self.name} is not implemented")
                new.append(w)
            out.append(tuple(new))
        return out


def train(net, global_flat, x, y, num_classes, plan, rng, should_stop):
    """E epochs of minibatch training from the global weights; returns (delta, loss, accuracy)."""
    params = net.unflatten(global_flat)
    anchor = [(k.copy(), None if b is None else b.copy()) for k, b in params] if plan.get("proximalMu", 0) > 0 else None
    onehot = np.eye(num_classes)[y]
    opt = Optimizer(plan["optimizer"], plan["learningRate"])
    losses = []
    for _ in range(plan["epochs"]):
        order = rng.permutation(len(y))
        for s in range(0, len(y), plan["batchSize"]):
            if should_stop():
                return None
            idx = order[s:s + plan["batchSize"]]
            loss, grads = net.gradients(params, x[idx], onehot[idx])
            if anchor is not None:  # FedProx: + mu/2 * ||w - w_global||^2
                mu = plan["proximalMu"]
                grads = [(gk + mu * (k - ak), None if gb is None else gb + mu * (b - ab)) for (gk, gb), (k, b), (ak, ab) in zip(grads, params, anchor)]
            params = opt.step(params, grads)
            losses.append(loss)
    delta = net.flatten(params) - global_flat
    return delta, float(np.mean(losses[-max(1, len(losses) // max(1, plan["epochs"])):])), net.accuracy(params, x, y)
