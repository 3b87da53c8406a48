// The embedded default's events: kept in memory (the newest `limit`) for `tandem status`, and
// handed to whoever listens (the terminal's view).
import { EventEmitter } from 'node:events';
import type { EventSink, ServiceEvent } from '../../core/group.js';

export class LocalEvents extends EventEmitter<{ event: [ServiceEvent] }> implements EventSink {
  private readonly kept: ServiceEvent[] = [];

  constructor(private readonly limit = 50) {
    super();
  }

  record(event: ServiceEvent): void {
    this.kept.push(event);
    if (this.kept.length > this.limit) this.kept.shift();
    this.emit('event', event);
  }

  /** The newest events, oldest first. */
  recent(): ServiceEvent[] {
    return [...this.kept];
  }
}
