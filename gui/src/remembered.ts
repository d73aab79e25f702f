import { useState } from 'preact/hooks';

/**
 * A choice remembered in this browser (localStorage under `key`), read once per component and
 * saved on each change; the fallback is the default and is not stored.
 */
export function useRemembered<T extends string>(key: string, choices: readonly T[], fallback: T): [T, (choice: T) => void] {
  const [value, setValue] = useState<T>(() => {
    const saved = localStorage.getItem(key) as T | null;
    return saved !== null && choices.includes(saved) ? saved : fallback;
  });
  const choose = (choice: T) => {
    if (choice === fallback) localStorage.removeItem(key);
    else localStorage.setItem(key, choice);
    setValue(choice);
  };
  return [value, choose];
}
