// `$(VAR)` in a member's command line, as the kubelet expands it: a variable of the member's own
// environment is replaced, `$$(` stays a literal `$(`, anything else is left as written (so shell
// `$(command)` substitutions in a script pass through). Renderers write ranks and leader addresses
// this way, so that one worker template fits every worker (LeaderWorkerSet's model).
export function expandEnvRefs(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$\(|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (match, name: string | undefined) => {
    if (name === undefined) return '$(';
    return Object.hasOwn(env, name) ? env[name]! : match;
  });
}
