#!/usr/bin/python3
"""A Flotilla device in Python, written from the wire specification docs/protocol.md.

It connects over socket.io (python-socketio, Debian's python3-socketio), joins a task, and for
every fit instruction downloads the global weights over HTTP, trains the task's dense model on
the data it holds with numpy, and reports the weight delta in the plan's codec; it answers
evaluation requests too. It prints one line per event, as the Node example does.

  /usr/bin/python3 examples/python-device/device.py --url http://127.0.0.1:8080 --token <device token> --task tiny

Options: --rounds N (exit 0 after N accepted reports), --seed S (which local data this device
holds), --examples N (rows of local data), --device-id ID (stable id; default: the server assigns
one, reused on reconnects).
"""
import argparse
import json
import queue
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import socketio

from delta_codecs import encode
from dense_model import DenseNet, train

PROTOCOL_VERSION = 2
# Handshake refusals after which retrying cannot help (docs/protocol.md, "Errors").
GIVE_UP = {
    "FL_ERR_PROTO_VERSION_MISMATCH", "FL_ERR_PROTO_INVALID_MESSAGE", "FL_ERR_AUTH_REQUIRED",
    "FL_ERR_AUTH_INVALID_TOKEN", "FL_ERR_AUTH_FORBIDDEN", "FL_ERR_TASK_NOT_FOUND",
    "FL_ERR_CLIENT_REVOKED", "FL_ERR_CLIENT_BOUND",
}


_SAY = threading.Lock()


def say(line):
    """One whole line per call: socket.io callbacks run on other threads, and print() writes the
    text and its newline separately, so two threads' lines could run together."""
    with _SAY:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def local_data(input_size, num_classes, n, seed):
    """This device's data: rows x and labels y of a problem all devices share (a fixed linear
    teacher labels each row with the class of highest score), drawn with this device's seed."""
    teacher = np.random.default_rng(12345).normal(size=(input_size, num_classes))
    x = np.random.default_rng(seed).uniform(-1, 1, size=(n, input_size))
    return x, np.argmax(x @ teacher, axis=1)


class Device:
    def __init__(self, args):
        self.args = args
        self.base = args.url.rstrip("/")
        self.inbox = queue.Queue()
        self.cancelled = set()
        self.session = None
        self.stopped = threading.Event()
        self.fatal = None
        self.reports = 0
        self.models = {}
        self.rng = np.random.default_rng(args.seed)
        # Credentials travel in the socket.io handshake auth object; the same dict is sent again
        # on every reconnect, with the device id the server assigned added to it.
        self.auth = {"protocolVersion": PROTOCOL_VERSION, "token": args.token, "taskId": args.task, "backend": "numpy"}
        if args.device_id:
            self.auth["deviceId"] = args.device_id
        self.sio = socketio.Client(reconnection=True, reconnection_delay=0.5, reconnection_delay_max=10, randomization_factor=0.5)
        self.sio.on("connect_error", self.on_connect_error)
        self.sio.on("disconnect", lambda: say("disconnected"))
        self.sio.on("session", self.on_session)
        self.sio.on("fit:instruction", lambda m: self.inbox.put(("fit", m)))
        self.sio.on("eval:instruction", lambda m: self.inbox.put(("eval", m)))
        self.sio.on("round:cancel", lambda m: self.cancelled.add(m["round"]))
        self.sio.on("task:state", self.on_task_state)

    # ---- connection ----
    def on_connect_error(self, data):
        code = data.get("code") if isinstance(data, dict) else None
        say(f"refused code={code} {data.get('message', '') if isinstance(data, dict) else data}")
        if code in GIVE_UP:
            self.fatal = code
            self.stop()

    def on_session(self, m):
        self.session = m
        self.auth["deviceId"] = m["deviceId"]
        say(f"connected device={m['deviceId']}")

    def on_task_state(self, m):
        say(f"task state={m['state']}")
        if m["state"] in ("done", "stopped", "failed"):
            self.stop()

    def heartbeats(self):
        while not self.stopped.is_set():
            interval = (self.session or {}).get("heartbeatIntervalMs", 5000) / 1000
            if self.stopped.wait(interval):
                return
            if self.sio.connected and self.session:
                try:
                    self.sio.emit("heartbeat", {"t": int(time.time() * 1000)})
                except socketio.exceptions.SocketIOError:
                    pass

    def stop(self):
        self.stopped.set()
        self.inbox.put(("stop", None))

    # ---- weights download (HTTP, same credential as a bearer token) ----
    def get(self, path):
        req = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {self.args.token}"})
        with urllib.request.urlopen(req, timeout=60) as res:
            return res.read()

    def load(self, ins):
        if ins["modelUrl"] not in self.models:
            self.models[ins["modelUrl"]] = DenseNet(json.loads(self.get(ins["modelUrl"])))
        net = self.models[ins["modelUrl"]]
        weights = np.frombuffer(self.get(ins["weightsUrl"]), dtype="<f4").astype(np.float32)
        if weights.size != net.length:
            raise ValueError(f"weights.bin holds {weights.size} floats, the manifest {net.length}")
        return net, weights

    def data(self, net, held_out=False):
        k = net.manifest[0]["shape"][0]
        classes = net.manifest[-1]["shape"][-1]
        n = self.args.examples // 4 if held_out else self.args.examples
        return local_data(k, classes, n, self.args.seed + (7919 if held_out else 0)), classes

    def call(self, event, payload, timeout):
        """Emit with an ack; returns the ack object ({ok: true, ...} or {ok: false, error})."""
        return self.sio.call(event, payload, timeout=timeout)

    # ---- work ----
    def fit(self, ins):
        rnd = ins["round"]
        stale = lambda: self.stopped.is_set() or rnd in self.cancelled or time.time() * 1000 > ins["deadline"]
        try:
            net, weights = self.load(ins)
            (x, y), classes = self.data(net)
            t0 = time.time()
            out = train(net, weights, x, y, classes, ins["plan"], self.rng, stale)
            if out is None or stale():
                return
            delta, loss, accuracy = out
            clip = ins["plan"].get("clipNorm")
            if clip is not None:
                norm = float(np.linalg.norm(delta))
                if norm > clip:
                    delta = (delta * (clip / norm)).astype(np.float32)
            payload = encode(ins["plan"]["codec"], delta, ins["plan"], self.rng)
            train_ms = (time.time() - t0) * 1000
        except Exception as err:  # the round fails on this device: say so, then go on
            say(f"failed round={rnd} {err}")
            self.sio.emit("fit:failure", {"taskId": ins["taskId"], "round": rnd, "reason": str(err)[:1000]})
            return
        # fit:ready asks for an upload slot; its ack may wait until one is free (up to the deadline).
        wait = max(30, (ins["deadline"] - time.time() * 1000) / 1000 + 5)
        ready = self.call("fit:ready", {"taskId": ins["taskId"], "round": rnd, "bytes": len(payload)}, wait)
        if not ready.get("ok"):
            say(f"rejected round={rnd} code={ready['error']['code']} (fit:ready)")
            return
        ack = self.call("fit:report", {
            "taskId": ins["taskId"], "round": rnd, "numExamples": int(len(y)),
            "metrics": {"loss": loss, "accuracy": accuracy}, "codec": ins["plan"]["codec"], "delta": payload,
        }, 60)
        if not ack.get("ok"):
            say(f"rejected round={rnd} code={ack['error']['code']}")
            return
        self.reports += 1
        say(f"fit round={rnd} examples={len(y)} loss={loss:.4f} bytesUp={len(payload)} trainMs={train_ms:.0f}")
        if self.args.rounds and self.reports >= self.args.rounds:
            self.stop()

    def evaluate(self, ins):
        try:
            net, weights = self.load(ins)
            (x, y), _ = self.data(net, held_out=True)
            params = net.unflatten(weights)
            accuracy = net.accuracy(params, x, y)
        except Exception as err:
            say(f"eval failed round={ins['round']} {err}")
            return
        ack = self.call("eval:report", {"taskId": ins["taskId"], "round": ins["round"], "numExamples": int(len(y)), "metrics": {"accuracy": accuracy}}, 60)
        say(f"eval round={ins['round']} accuracy={accuracy:.4f}" if ack.get("ok") else f"rejected eval round={ins['round']} code={ack['error']['code']}")

    def run(self):
        try:
            self.sio.connect(self.base, auth=self.auth, transports=self.args.transports.split(","), socketio_path="socket.io", wait_timeout=30)
        except socketio.exceptions.ConnectionError as err:
            say(f"could not connect: {err}")
            return 1
        threading.Thread(target=self.heartbeats, daemon=True).start()
        while not self.stopped.is_set():
            kind, msg = self.inbox.get()
            if kind == "stop":
                break
            if kind == "fit":
                # A newer instruction already waiting makes this one stale (its round is over).
                if any(k == "fit" and m["round"] > msg["round"] for k, m in list(self.inbox.queue)):
                    continue
                self.fit(msg)
            elif kind == "eval":
                self.evaluate(msg)
        self.sio.disconnect()
        return 1 if self.fatal else 0


def main():
    p = argparse.ArgumentParser(description="A Flotilla device in Python (numpy).")
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--token", required=True)
    p.add_argument("--task", default="tiny")
    p.add_argument("--rounds", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--examples", type=int, default=200)
    p.add_argument("--device-id")
    p.add_argument("--transports", default="websocket", help="websocket, polling, or polling,websocket")
    sys.exit(Device(p.parse_args()).run())


if __name__ == "__main__":
    main()
