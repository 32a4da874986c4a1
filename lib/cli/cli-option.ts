/**
 * A command-line option written once: the flag, its help text, default and the check of its value. A command
 * lists the options it takes (in the order its help shows them) and reads each value through the same
 * definition, so a flag that several commands share reads, defaults and fails alike in all of them (the
 * shared ones are in options.ts).
 */
import { Option, type Command } from 'commander';

/** What commander hands an action: strings for valued flags, booleans for switches. */
export type ParsedOptions = Record<string, string | boolean | undefined>;

interface OptionSettings {
  default?: string;
  required?: boolean;
}

/** One option of the command line; `T` is the checked value a command works with. */
export class CliOption<T> {
  /** The long flag as users type it (`--space`): messages name it. */
  readonly flag: string;
  /** Commander's key for it in an action's options (`--memory-mb` → `memoryMb`, `--no-standardize` → `standardize`). */
  readonly key: string;

  constructor(
    readonly spec: string,
    readonly help: string,
    private readonly settings: OptionSettings,
    private readonly parse: (flag: string, raw: string | boolean | undefined) => T,
  ) {
    const o = new Option(spec);
    this.flag = o.long ?? spec;
    this.key = o.attributeName();
  }

  /** The same option (flag, default, check) with a command's own help text. */
  withHelp(help: string): CliOption<T> {
    return new CliOption(this.spec, help, this.settings, this.parse);
  }

  /** A fresh commander Option each time: buildProgram annotates every command's options in place. */
  toOption(): Option {
    const o = new Option(this.spec, this.help);
    if (this.settings.default !== undefined) o.default(this.settings.default);
    if (this.settings.required) o.makeOptionMandatory();
    return o;
  }

  /** The value from an action's options, checked (undefined when an optional flag without default is absent). */
  read(o: ParsedOptions): T {
    return this.parse(this.flag, o[this.key]);
  }
}

interface ValueSettings<T> extends OptionSettings {
  /** Checks and converts the value as typed (default: the string itself). */
  parse?: (flag: string, value: string) => T;
}

/** An option with a value (`--k <n>`); with a default or required, `read` always gives a value. */
export function option<T = string>(spec: string, help: string, s: ValueSettings<T> & ({ default: string } | { required: true })): CliOption<T>;
export function option<T = string>(spec: string, help: string, s?: ValueSettings<T>): CliOption<T | undefined>;
export function option<T>(spec: string, help: string, s: ValueSettings<T> = {}): CliOption<T | undefined> {
  const parse = s.parse ?? ((_flag: string, value: string) => value as T);
  const settings: OptionSettings = { ...(s.default !== undefined && { default: s.default }), ...(s.required && { required: true }) };
  return new CliOption(spec, help, settings, (flag, raw) => (raw === undefined ? undefined : parse(flag, raw as string)));
}

/** A switch (`--json`, `--no-standardize`): true or false. */
export function switchOption(spec: string, help: string): CliOption<boolean> {
  return new CliOption(spec, help, {}, (_flag, raw) => Boolean(raw));
}

/** Adds `options` to `cmd` in this order (the order of its help). */
export function withOptions(cmd: Command, options: readonly CliOption<unknown>[]): Command {
  for (const o of options) cmd.addOption(o.toOption());
  return cmd;
}

type Values<S> = { [K in keyof S]: S[K] extends CliOption<infer T> ? T : never };

/** Reads several options in the order listed, so that the first flag at fault is the one reported. */
export function readOptions<S extends Record<string, CliOption<unknown>>>(o: ParsedOptions, options: S): Values<S> {
  const out: Record<string, unknown> = {};
  for (const [name, opt] of Object.entries(options)) out[name] = opt.read(o);
  return out as Values<S>;
}

type Given<T> = { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } & {
  [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<T[K], undefined>;
};

/** `values` less the flags not given, so that the library's defaults apply to those. */
export function given<T extends Record<string, unknown>>(values: T): Given<T> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Given<T>;
}
