import type { TokenizerJson } from '../data/tokenizer.js';
import type { Normalization } from '../model/clip.js';
import type { ClipArchitecture } from '../model/towers.js';

/** Messages of `ParallelEmbedder` and its threads (./worker.ts). Every task gets exactly one reply. */
export type EmbedTask =
  | { type: 'init'; backend: string; arch: ClipArchitecture; tokenizer: TokenizerJson; normalization: Normalization }
  | { type: 'weights'; params: { name: string; shape: number[]; data: Float32Array }[]; kernel: boolean }
  | { type: 'embed'; pixels: Uint8Array; count: number };

export type EmbedReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; message: string; stack?: string };
