import { useRemembered } from './remembered';

/** Whether the log wraps long lines: off by default, the choice remembered in this browser. */
export function useWrapLines(): [boolean, (on: boolean) => void] {
  const [wrap, setWrap] = useRemembered('run-hub-wrap', ['on', 'off'], 'off');
  return [wrap === 'on', (on) => setWrap(on ? 'on' : 'off')];
}
