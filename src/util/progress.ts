// Progress of long work (building the engine, making the model), shown on stderr.
export type Progress = (message: string) => void;

export const stderrProgress: Progress = (message) => process.stderr.write(`tandem: ${message}\n`);
export const silentProgress: Progress = () => {};
