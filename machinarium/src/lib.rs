//! machinarium: stackful coroutines on machines (OS threads with a mio event loop).
