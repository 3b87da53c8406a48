// The layering of src/, checked in the lint tier (`npm test`): contracts at the bottom, one
// controller, twin platforms, the gateway and autoscaler on contracts only, cli wiring it all.
//   core ← spec ← planner/model ← engine ← controller ← platforms/{local,kubernetes} ← cli
//   core ← gateway, autoscaler, control, ui ← cli
const layer = (name, path, allowed) => ({
  name: `${name}-layering`,
  comment: `${name} may import only ${allowed.join(', ')}`,
  severity: 'error',
  from: { path },
  to: { path: '^src/', pathNot: [path, ...allowed.map((a) => `^src/${a}/`)] },
});

export default {
  forbidden: [
    { name: 'no-cycles', severity: 'error', from: {}, to: { circular: true } },
    layer('core', '^src/core/', []),
    layer('util', '^src/util/', []),
    layer('spec', '^src/spec/', ['core', 'util']),
    layer('model', '^src/model/', ['util']),
    layer('planner', '^src/planner/', ['spec', 'model', 'core', 'util']),
    layer('engine', '^src/engine/', ['core', 'spec', 'planner', 'model', 'util']),
    layer('controller', '^src/controller/', ['core', 'spec', 'util']),
    layer('platforms-local', '^src/platforms/local/', ['core', 'controller', 'spec', 'util']),
    layer('platforms-kubernetes', '^src/platforms/kubernetes/', ['core', 'controller', 'engine', 'spec', 'util']),
    layer('gateway', '^src/gateway/', ['core', 'util']),
    layer('autoscaler', '^src/autoscaler/', ['core', 'util']),
    layer('control', '^src/control/', ['core', 'spec', 'util']),
    layer('ui', '^src/ui/', ['core', 'util']),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(dist|node_modules)/' },
  },
};
