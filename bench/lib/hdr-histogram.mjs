/**
 * Latency histograms (HdrHistogram, microseconds, 3 significant digits) that travel between the
 * load-generator processes and the harness as compressed base64 and are merged there.
 */
import hdr from 'hdr-histogram-js';

/** One hour in microseconds: anything slower is clamped to it. */
const HIGHEST_US = 3_600_000_000;

export function createHistogram() {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 3, bitBucketSize: 32 });
}

/** Records one value in microseconds (negative values, from clock skew, count as 0). */
export function record(histogram, valueUs) {
  histogram.recordValue(Math.min(HIGHEST_US, Math.max(0, Math.round(valueUs))));
}

export function serialize(histogram) {
  return hdr.encodeIntoCompressedBase64(histogram);
}

/** Merges serialized histograms into one. */
export function merge(serialized) {
  const total = createHistogram();
  for (const item of serialized) {
    if (!item) continue;
    const part = hdr.decodeFromCompressedBase64(item, 32);
    total.add(part);
    part.destroy?.();
  }
  return total;
}

/** Percentiles in milliseconds, or nulls for an empty histogram. */
export function summarize(histogram) {
  const count = histogram.totalCount;
  const ms = (us) => (count === 0 ? null : Math.round(us) / 1000);
  return {
    count,
    p50Ms: ms(histogram.getValueAtPercentile(50)),
    p99Ms: ms(histogram.getValueAtPercentile(99)),
    p999Ms: ms(histogram.getValueAtPercentile(99.9)),
    maxMs: ms(histogram.maxValue),
  };
}
