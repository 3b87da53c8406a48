// Build tools Tandem runs (git, cmake, a C++ compiler; Go for the test control plane). A missing
// one is a single line that names what to install, not a stack trace from deep inside a build.
import { execFileSync } from 'node:child_process';

export interface Tool {
  command: string;
  /** What to install, e.g. "cmake (Debian/Ubuntu: apt install cmake)". */
  install: string;
}

export const GIT: Tool = { command: 'git', install: 'git (Debian/Ubuntu: apt install git)' };
export const CMAKE: Tool = { command: 'cmake', install: 'cmake ≥ 3.14 (Debian/Ubuntu: apt install cmake)' };
export const CXX: Tool = { command: 'c++', install: 'a C++ compiler (Debian/Ubuntu: apt install g++)' };
export const GO: Tool = { command: 'go', install: 'Go ≥ 1.26 (https://go.dev/doc/install)' };

export class MissingToolError extends Error {
  constructor(readonly tool: Tool) {
    super(`${tool.command} not found on PATH: install ${tool.install}`);
  }
}

/** Throws MissingToolError for the first tool that does not run. */
export function requireTools(...tools: Tool[]): void {
  for (const tool of tools) {
    try {
      execFileSync(tool.command, ['--version'], { stdio: 'ignore' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new MissingToolError(tool);
      // It exists but `--version` failed (Go wants `go version`): present is all we ask here.
    }
  }
}
