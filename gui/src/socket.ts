import type { Run, ServerMessage, StartAt } from '../../server/wire';

export type { CompleteMessage, ErrorMessage, LinesMessage, RunMessage, SectionsMessage, ServerMessage, SubscribedMessage } from '../../server/wire';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting';

/** Errors that pass (see the README's WebSocket protocol): the subscription is asked for again. */
const RETRYABLE = new Set(['database_busy', 'log_store_unavailable', 'log_unavailable']);

/** A run of the project changed, or was removed (purged, or past the retention limits). */
export type ProjectHandler = (run: Run, removed?: boolean) => void;

interface RunSubscription {
  start: StartAt;
  /** the next byte this client has not seen; resubscribing resumes here */
  next: number | null;
  done: boolean;
  /** its lines carry their times */
  timestamps: boolean;
  /** it gets `sections` messages */
  sections: boolean;
  /** a subscribe is on its way: until its `subscribed`, messages are an earlier subscription's, in flight */
  waiting: boolean;
  /** subscribes answered with a passing error in a row (the backoff before the next) */
  refusals: number;
  handler: (message: ServerMessage) => void;
}

/**
 * One WebSocket for the whole page. It reconnects with backoff and resumes every run subscription
 * from the last `next` it saw, dropping anything it has already seen, so the log has no gap and no
 * duplicate across reconnects and server restarts.
 */
export class HubSocket {
  state: ConnectionState = 'connecting';
  private socket: WebSocket | null = null;
  private attempt = 0;
  private readonly runs = new Map<number, RunSubscription>();
  private readonly projects = new Map<number, Set<ProjectHandler>>();
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();

  constructor(private readonly url: string) {
    this.connect();
  }

  onState(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  subscribeRun(runId: number, start: StartAt, handler: (message: ServerMessage) => void, options: { timestamps?: boolean; sections?: boolean } = {}): () => void {
    const subscription: RunSubscription = { start, next: 'offset' in start ? start.offset : null, done: false, timestamps: options.timestamps === true, sections: options.sections === true, waiting: true, refusals: 0, handler };
    this.runs.set(runId, subscription);
    this.sendSubscribe(runId, subscription);
    return () => {
      if (this.runs.get(runId) !== subscription) return;
      this.runs.delete(runId);
      this.send({ type: 'unsubscribe', run_id: runId });
    };
  }

  subscribeProject(projectId: number, handler: ProjectHandler): () => void {
    let handlers = this.projects.get(projectId);
    if (!handlers) {
      handlers = new Set();
      this.projects.set(projectId, handlers);
      this.send({ type: 'subscribe', project_id: projectId });
    }
    handlers.add(handler);
    return () => {
      handlers!.delete(handler);
      if (handlers!.size === 0 && this.projects.get(projectId) === handlers) {
        this.projects.delete(projectId);
        this.send({ type: 'unsubscribe', project_id: projectId });
      }
    };
  }

  private connect(): void {
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      this.setState('open');
      for (const [runId, subscription] of this.runs) if (!subscription.done) this.sendSubscribe(runId, subscription);
      for (const projectId of this.projects.keys()) this.send({ type: 'subscribe', project_id: projectId });
    };
    socket.onmessage = (event) => this.socketOnMessage(JSON.parse(String(event.data)) as ServerMessage);
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.setState('reconnecting');
      const delay = Math.min(10_000, 250 * 2 ** this.attempt++) * (0.75 + Math.random() / 2);
      setTimeout(() => this.connect(), delay);
    };
  }

  private socketOnMessage(message: ServerMessage): void {
    if (message.type === 'run') {
      for (const handler of this.projects.get(message.run.project_id) ?? []) handler(message.run);
      this.runs.get(message.run.id)?.handler(message);
      return;
    }
    if (message.type === 'run_removed') {
      const removed = { id: message.run_id, project_id: message.project_id } as Run;
      for (const handler of this.projects.get(message.project_id) ?? []) handler(removed, true);
      // Its log subscription ended with it: not asked for again after a reconnect (it would be not_found).
      const subscription = this.runs.get(message.run_id);
      if (subscription) subscription.done = true;
      return;
    }
    const runId = message.run_id;
    const subscription = runId === undefined ? undefined : this.runs.get(runId);
    if (!subscription) return;
    if (message.type === 'error' && RETRYABLE.has(message.code)) {
      // The hub's database or Redis away, or a finished log whole in no store just now: ask again
      // from where this copy is, after a backoff (1 s doubling to 30 s, jittered).
      const delay = Math.min(30_000, 1000 * 2 ** subscription.refusals++) * (0.75 + Math.random() / 2);
      setTimeout(() => {
        if (this.runs.get(runId!) === subscription && !subscription.done) this.sendSubscribe(runId!, subscription);
      }, delay);
      return;
    }
    if (message.type === 'subscribed') subscription.waiting = false;
    else if (subscription.waiting && message.type !== 'error') return;
    if (message.type === 'lines' || message.type === 'complete') subscription.refusals = 0;
    if (message.type === 'subscribed' && subscription.next === null) subscription.next = message.offset ?? 0;
    if (message.type === 'lines') {
      if (subscription.next !== null && message.offset !== subscription.next) {
        // Not where we are: an overlap we already have, or a gap we must re-read. Resume from next.
        if (message.offset > subscription.next) this.sendSubscribe(runId!, subscription);
        return;
      }
      subscription.next = message.next;
    }
    if (message.type === 'complete') subscription.done = true;
    subscription.handler(message);
  }

  private sendSubscribe(runId: number, subscription: RunSubscription): void {
    const start = subscription.next === null ? subscription.start : { offset: subscription.next };
    subscription.waiting = true;
    this.send({ type: 'subscribe', run_id: runId, ...start, ...(subscription.timestamps && { timestamps: true }), ...(subscription.sections && { sections: true }) });
  }

  private send(message: unknown): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  private setState(state: ConnectionState): void {
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }
}
