// `tandem logs`: print a member's log (the rotated part first) and optionally follow it.
import { followFile } from '../util/follow-file.js';

export async function showLog(path: string, follow: boolean): Promise<void> {
  for await (const chunk of followFile(path, { follow })) process.stdout.write(chunk);
}
