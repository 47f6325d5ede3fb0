// @ts-check
// The one place pages import Preact and htm from: a new version of the
// vendored file changes this line only.
export {
  html,
  render,
  h,
  Component,
  createContext,
  useState,
  useReducer,
  useEffect,
  useLayoutEffect,
  useRef,
  useMemo,
  useCallback,
  useContext,
} from "../vendor/htm@3.1.1/preact-standalone.module.js";
