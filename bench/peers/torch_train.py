#!/usr/bin/python3
"""PyTorch peer for bench/train: one CLIP training step of the same
architecture as ours (MLP image tower, bag-of-words text tower, symmetric
InfoNCE, AdamW), on random data, at the given batch size and thread count.
Prints one JSON line: {"samples_per_second": ..., "threads": ...}.

    /usr/bin/python3 bench/peers/torch_train.py --input 784 --hidden 512,512 --embed 128 \
        --text-width 256 --vocab 30 --tokens 16 --batch 256 --threads 2
"""
import argparse
import json
import os
import time

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument('--input', type=int, required=True)
p.add_argument('--hidden', default='512,512')
p.add_argument('--embed', type=int, default=128)
p.add_argument('--text-width', type=int, default=256)
p.add_argument('--vocab', type=int, default=30)
p.add_argument('--tokens', type=int, default=16)
p.add_argument('--batch', type=int, default=256)
p.add_argument('--threads', type=int, default=2)
p.add_argument('--seconds', type=float, default=5.0)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)

hidden = [int(h) for h in a.hidden.split(',') if h]
layers, width = [], a.input
for h in hidden:
    layers += [nn.Linear(width, h), nn.ReLU()]
    width = h
image = nn.Sequential(*layers, nn.Linear(width, a.embed))
emb = nn.EmbeddingBag(a.vocab, a.text_width, mode='mean', padding_idx=0)
proj = nn.Linear(a.text_width, a.embed)
logit_scale = nn.Parameter(torch.tensor(2.659))
params = list(image.parameters()) + list(emb.parameters()) + list(proj.parameters()) + [logit_scale]
opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.1)

x = torch.randn(a.batch, a.input)
tok = torch.randint(1, a.vocab, (a.batch, a.tokens))
target = torch.arange(a.batch)


def step():
    i = F.normalize(image(x), dim=-1)
    t = F.normalize(proj(emb(tok)), dim=-1)
    logits = logit_scale.exp().clamp(max=100) * i @ t.t()
    loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


for _ in range(5):
    step()
steps, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < a.seconds:
    step()
    steps += 1
dt = time.perf_counter() - t0
print(json.dumps({'samples_per_second': steps * a.batch / dt, 'threads': a.threads, 'steps': steps}))
