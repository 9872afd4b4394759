/**
 * The app of examples/kubernetes/deployment.yaml: readiness fails from the moment SIGTERM
 * arrives, the listener keeps accepting during `shutdownDelay` while endpoints are
 * removed, then the server drains. In your app: `import { … } from 'hitless'`.
 */
import { healthHandlers, serve } from '../../src/index.js';

const health = healthHandlers();
await serve((req, res) => {
  if (req.url === '/readyz') return health.readiness(req, res);
  if (req.url === '/livez') return health.liveness(req, res);
  res.end('hello\n');
}, {
  // Longer than the time Kubernetes needs to take the pod out of the Service endpoints
  // (readinessProbe periodSeconds × failureThreshold, plus kube-proxy / ingress lag).
  shutdownDelay: 10_000,
  // Deadline of the drain itself.
  timeout: 20_000,
});
