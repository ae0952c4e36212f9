import { describe, expect, it } from 'vitest';
import { AUTOSCALER_SETTINGS, loadAutoscalerConfig, policySettings } from '../../src/autoscaler/config.js';
import { ConfigError } from '../../src/shared/errors.js';

describe('autoscaler configuration', () => {
  it('has the contract defaults, frozen', () => {
    const { config } = loadAutoscalerConfig({});
    expect(config).toMatchObject({
      namespace: null, gatewayDeployment: 'roomcast-gateway', gatewayMetricsPort: 9090, periodMs: 5000, httpPort: 9091,
      scheduleFile: '/etc/roomcast/schedule.json', dryRun: false, minReplicas: 2, maxReplicas: 100, targetConnections: 50_000,
      targetCpuUtilization: 0.7, drainMs: 30_000, leaseName: 'roomcast-autoscaler', podName: null,
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(policySettings(config).scaleDownPeriodMs).toBe(60_000);
  });

  it('reads variables and flags (flags win), and --dry-run alone', () => {
    const { config, ignoredVariables } = loadAutoscalerConfig(
      { ROOMCAST_K8S_NAMESPACE: 'live', ROOMCAST_MIN_REPLICAS: '3', ROOMCAST_WS_PORT: '8080' },
      ['--min-replicas', '4', '--dry-run', '--target-connections=20000'],
    );
    expect(config).toMatchObject({ namespace: 'live', minReplicas: 4, dryRun: true, targetConnections: 20_000 });
    expect(ignoredVariables).toEqual(['ROOMCAST_WS_PORT']);
  });

  it('reports every problem at once', () => {
    let error: unknown;
    try {
      loadAutoscalerConfig(
        { ROOMCAST_MIN_REPLICAS: '0', ROOMCAST_GATEWAY_DEPLOYMENT: 'Not_A_Name', ROOMCAST_SCALE_DOWN_PERIOD_MS: '10000', ROOMCAST_DRAIN_MS: '30000' },
        ['--bogus', '1', '--max-replicas', 'many'],
      );
    } catch (e) { error = e; }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(5);
    expect(problems).toEqual(expect.arrayContaining([
      'unknown flag --bogus',
      expect.stringMatching(/^ROOMCAST_MIN_REPLICAS \(--min-replicas\) must be an integer from 1/),
      expect.stringMatching(/^ROOMCAST_MAX_REPLICAS \(--max-replicas\) must be an integer/),
      expect.stringMatching(/^ROOMCAST_GATEWAY_DEPLOYMENT .* must be a Kubernetes object name/),
      expect.stringMatching(/^ROOMCAST_SCALE_DOWN_PERIOD_MS must exceed ROOMCAST_DRAIN_MS/),
    ]));
  });

  it('checks the relations between settings', () => {
    expect(() => loadAutoscalerConfig({ ROOMCAST_MIN_REPLICAS: '10', ROOMCAST_MAX_REPLICAS: '5', ROOMCAST_FALLBACK_REPLICAS: '7' })).toThrow(/MIN_REPLICAS must not exceed/);
    expect(() => loadAutoscalerConfig({ ROOMCAST_FALLBACK_REPLICAS: '1' })).toThrow(/FALLBACK_REPLICAS must be within/);
    expect(() => loadAutoscalerConfig({ ROOMCAST_SCRAPE_TIMEOUT_MS: '6000' })).toThrow(/SCRAPE_TIMEOUT_MS must be shorter/);
  });

  it('names every contract variable, each with a distinct flag', () => {
    const envs = AUTOSCALER_SETTINGS.map((s) => s.env);
    for (const name of [
      'ROOMCAST_K8S_NAMESPACE', 'ROOMCAST_GATEWAY_DEPLOYMENT', 'ROOMCAST_GATEWAY_METRICS_PORT', 'ROOMCAST_AUTOSCALER_PERIOD_MS',
      'ROOMCAST_AUTOSCALER_HTTP_PORT', 'ROOMCAST_SCHEDULE_FILE', 'ROOMCAST_AUTOSCALER_DRY_RUN', 'ROOMCAST_MIN_REPLICAS', 'ROOMCAST_MAX_REPLICAS',
      'ROOMCAST_FALLBACK_REPLICAS', 'ROOMCAST_TARGET_CONNECTIONS', 'ROOMCAST_TARGET_DELIVERIES_PER_SEC', 'ROOMCAST_TARGET_NEW_CONNECTIONS_PER_SEC',
      'ROOMCAST_TARGET_CPU_UTILIZATION', 'ROOMCAST_TARGET_LAG_P99_S', 'ROOMCAST_DRAIN_MS', 'ROOMCAST_LEASE_NAME', 'ROOMCAST_POD_NAME',
    ]) expect(envs).toContain(name);
    expect(new Set(AUTOSCALER_SETTINGS.map((s) => s.flag)).size).toBe(AUTOSCALER_SETTINGS.length);
    expect(AUTOSCALER_SETTINGS.find((s) => s.env === 'ROOMCAST_K8S_NAMESPACE')!.flag).toBe('--k8s-namespace');
  });
});
