const TEXT = { live: 'Live', connecting: 'Connecting…', offline: 'Offline' };

/* The event stream's state, next to live charts. */
export function LiveIndicator({ status }) {
  return (
    <span className={`live live-${status}`} title={status === 'live' ? 'Receiving updates every second' : 'Live updates are not arriving'}>
      <span className="live-dot" aria-hidden="true" />
      {TEXT[status] || status}
    </span>
  );
}
