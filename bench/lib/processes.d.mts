/** Types for the tests (test/integration/bench-native-client.test.ts); the harness itself is plain ESM. */
export class ProcessGroup {
  constructor();
  stopAll(): Promise<void>;
}
