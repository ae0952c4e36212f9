/** Types for the tests (test/integration/bench-native-client.test.ts); the harness itself is plain ESM. */
import type { ProcessGroup } from './processes.mjs';

export interface NativeConfig {
  protocol: string;
  host: string;
  port: number;
  /** Several servers (Socket.IO nodes): connection i goes to ports[i % ports.length]. */
  ports?: number[];
  secret: string;
  startIndex: number;
  count: number;
  rooms: { prefix: string; count: number };
  sampled: number[];
  trackSeqs: boolean;
  trackAnswers: boolean;
  connectConcurrency: number;
  perAddress: number;
  uidPrefix: string;
  mode: 'room' | 'pm' | 'gm';
  group?: string;
}

/** A reply line, shaped like a Node load worker's IPC reply. */
export interface NativeReply { ev: string; [field: string]: unknown }

export function nativeClient(): { binary: string | null; reason: string | null };

export class NativeHandle {
  constructor(group: ProcessGroup, name: string, config: NativeConfig, cpu?: string);
  request(cmd: string, fields?: Record<string, unknown>): Promise<NativeReply>;
}
