/**
 * Dependency-free terminal output for the demo and the examples: colours, a spinner and a printer
 * that renders session events as they stream. Colours and the spinner are used only on a TTY
 * (and never with `NO_COLOR`); elsewhere the output is plain text, one line per thing.
 */
import type { SessionEvent } from 'agent-sessions';

/** True when a human is watching: stdout and stdin are terminals and this is not CI. */
export function isInteractive(): boolean {
  const ci = process.env.CI;
  return (
    Boolean(process.stdout.isTTY && process.stdin.isTTY) && (ci === undefined || ci === '' || ci === 'false')
  );
}

const useColour = isInteractive() && !process.env.NO_COLOR;

function paint(open: number, close: number): (text: string) => string {
  return (text) => (useColour ? `\x1b[${open}m${text}\x1b[${close}m` : text);
}

export const colour = {
  bold: paint(1, 22),
  dim: paint(2, 22),
  italic: paint(3, 23),
  red: paint(31, 39),
  green: paint(32, 39),
  yellow: paint(33, 39),
  blue: paint(34, 39),
  magenta: paint(35, 39),
  cyan: paint(36, 39),
};

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** A one-line spinner; does nothing when no human is watching. */
export class Spinner {
  #timer: ReturnType<typeof setInterval> | undefined;
  #frame = 0;

  start(label: string): void {
    if (!isInteractive() || this.#timer) return;
    const draw = () => {
      process.stdout.write(
        `\r\x1b[2K${colour.cyan(FRAMES[this.#frame++ % FRAMES.length]!)} ${colour.dim(label)}`,
      );
    };
    draw();
    this.#timer = setInterval(draw, 80);
  }

  stop(): void {
    if (!this.#timer) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    process.stdout.write('\r\x1b[2K');
  }
}

/** Prints session events as a chat transcript, text deltas inline. */
export class EventPrinter {
  readonly spinner = new Spinner();
  /** What the current line holds: nothing yet, streamed answer text or streamed reasoning. */
  #line: 'start' | 'answer' | 'reasoning' = 'start';

  /** Ends the current line if something was written on it. */
  newline(): void {
    this.spinner.stop();
    if (this.#line !== 'start') process.stdout.write('\n');
    this.#line = 'start';
  }

  /** Prints a whole line (ending any streamed text first). */
  line(text: string): void {
    this.newline();
    process.stdout.write(`${text}\n`);
  }

  print(event: SessionEvent): void {
    switch (event.type) {
      case 'stream_started':
        this.line(colour.dim(`  ┌ turn ${event.turnId} started (seq ${event.seq})`));
        this.spinner.start('thinking…');
        return;
      case 'user_message':
        this.line(`  ${colour.cyan('you  ›')} ${event.message.content}`);
        this.spinner.start('thinking…');
        return;
      case 'session_title':
        this.line(colour.dim(`  │ title: ${JSON.stringify(event.title)}`));
        return;
      case 'agent_choice_reasoning':
        this.#inline('reasoning', `  ${colour.magenta('think›')} `, colour.dim(colour.italic(event.content)));
        return;
      case 'agent_choice':
        this.#inline('answer', `  ${colour.green('agent›')} `, event.content);
        return;
      case 'tool_call':
        this.line(`  ${colour.yellow('tool ›')} ${event.toolCall.name}(${event.toolCall.arguments})`);
        return;
      case 'tool_call_confirmation':
        this.line(
          `  ${colour.yellow('ask  ›')} ${event.toolCall.name} needs your approval (${event.confirmationId})`,
        );
        return;
      case 'elicitation_request':
        this.line(`  ${colour.yellow('ask  ›')} ${event.message}`);
        return;
      case 'tool_call_output':
        this.line(colour.dim(`  │ ${event.output}`));
        this.spinner.start('running the tool…');
        return;
      case 'tool_call_response':
        this.line(`  ${event.isError ? colour.red('  ↳') : colour.green('  ↳')} ${event.response}`);
        this.spinner.start('thinking…');
        return;
      case 'token_usage':
        this.line(
          colour.dim(
            `  │ usage: ${event.usage.inputTokens} in, ${event.usage.outputTokens} out (${event.usage.model})`,
          ),
        );
        return;
      case 'error':
        this.line(colour.red(`  │ error: ${event.message}`));
        return;
      case 'warning':
        this.line(colour.yellow(`  │ warning: ${event.message}`));
        return;
      case 'gap':
        this.line(colour.yellow(`  │ gap (${event.reason}): the next event is seq ${event.nextSeq}`));
        return;
      case 'stream_stopped':
        this.line(colour.dim(`  └ turn ${event.turnId} stopped: ${event.reason} (seq ${event.seq})`));
        return;
      default:
        // message_added, plan_updated, custom, …: stored or shown elsewhere, not worth a line here.
        return;
    }
  }

  #inline(kind: 'answer' | 'reasoning', prefix: string, text: string): void {
    this.spinner.stop();
    if (this.#line !== kind) {
      if (this.#line !== 'start') process.stdout.write('\n');
      process.stdout.write(prefix);
      this.#line = kind;
    }
    process.stdout.write(text);
  }
}
