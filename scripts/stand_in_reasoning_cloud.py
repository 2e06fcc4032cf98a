#!/usr/bin/env python3
"""A stand-in for a reasoning cloud model (DeepSeek-R1-like) on loopback, for rehearsals of real-model
mechanics. It answers OpenAI chat completions the way a reasoning model does: a long <think> block that
holds a wrong tentative answer, then the gold answer in \\boxed{} — looked up by the question the last user
message starts with, in a GSM8K-style JSONL file (its "#### X" answers). A question it does not know gets
a boxed "unknown". GET /v1/models lists it.

    scripts/stand_in_reasoning_cloud.py --data FILE.jsonl --port-file PATH [--model r1-stand-in]

It binds an ephemeral port on 127.0.0.1, writes it to PATH and serves until killed.
"""
import argparse
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def load_answers(path):
    answers = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                item = json.loads(line)
                answers[item["question"].strip()] = item["answer"].split("####")[-1].strip()
    return answers


def make_handler(answers, model, log):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def send_json(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path.rstrip("/") == "/v1/models":
                self.send_json(200, {"object": "list", "data": [{"id": model, "object": "model"}]})
            else:
                self.send_json(404, {"error": {"message": "not found"}})

        def do_POST(self):
            if self.path != "/v1/chat/completions":
                self.send_json(404, {"error": {"message": "not found"}})
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            messages = body.get("messages", [])
            user = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
            gold = next((a for q, a in answers.items() if user.startswith(q)), "unknown")
            content = ("<think>\nLet me work through this carefully. A first guess: \\boxed{0}. Answer: 0\n"
                       "That does not check out; recomputing step by step.\n</think>\n\n"
                       "The answer is \\boxed{" + gold + "}.")
            log.append({"user": user, "max_tokens": body.get("max_tokens")})
            prompt_tokens = sum(len(m.get("content", "").split()) for m in messages)
            completion_tokens = len(content.split())
            self.send_json(200, {
                "id": "chatcmpl-stand-in", "object": "chat.completion", "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}})

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="GSM8K-style JSONL (question, answer with #### X)")
    ap.add_argument("--port-file", required=True, help="where to write the port it listens on")
    ap.add_argument("--model", default="r1-stand-in")
    ap.add_argument("--log", help="append one JSON line per request here (what the cloud was told)")
    a = ap.parse_args()
    log = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(load_answers(a.data), a.model, log))
    with open(a.port_file, "w") as f:
        f.write(str(server.server_address[1]))
    if a.log:
        def flush():
            while True:
                threading.Event().wait(0.5)
                with open(a.log + ".tmp", "w") as f:  # whole or absent: readers never see half a file
                    for entry in list(log):
                        f.write(json.dumps(entry) + "\n")
                os.replace(a.log + ".tmp", a.log)
        threading.Thread(target=flush, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
