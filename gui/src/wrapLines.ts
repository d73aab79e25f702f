import { useState } from 'preact/hooks';

/** Whether the log wraps long lines: off by default, the choice remembered in this browser. */
const KEY = 'run-hub-wrap';

const savedWrap = (): boolean => localStorage.getItem(KEY) === 'on';

function saveWrap(on: boolean): void {
  if (on) localStorage.setItem(KEY, 'on');
  else localStorage.removeItem(KEY);
}

/** The wrap setting, read once per log view and saved on each change. */
export function useWrapLines(): [boolean, (on: boolean) => void] {
  const [wrap, setWrap] = useState(savedWrap);
  const choose = (on: boolean) => {
    saveWrap(on);
    setWrap(on);
  };
  return [wrap, choose];
}
