"""The Celery broker transport: kombu's Redis transport, with one fix so that a worker
survives losing Redis while it runs a job.

After a connection loss, Celery's consumer collects the broker connection, then closes it;
closing the channel restores the messages not yet acknowledged (a job running, with late
acknowledgement), and that needs the connection ``collect()`` has just dropped: kombu raises
``AttributeError: 'NoneType' object has no attribute 'hostname'``, which Celery treats as
unrecoverable, and the worker exits for good (a known class of kombu bugs, e.g.
celery/kombu#582). Nothing can be restored while Redis is away anyway: those messages stay in
Redis's « unacked » index and come back after the visibility timeout, as a dead worker's do.
"""

import logging

from kombu.transport import redis, virtual

logger = logging.getLogger(__name__)

LATER = "will come back after the visibility timeout (broker connection gone)"


class QoS(redis.QoS):
    """Acknowledging or restoring through a channel whose connection a loss has collected
    cannot reach Redis: the message is left to the visibility timeout instead."""

    def _connection_gone(self) -> bool:
        transport = self.channel.connection
        return transport is None or transport.client is None

    def restore_unacked(self, client=None):
        if client is None and self._connection_gone():
            logger.warning("Unacknowledged messages: %s, %s", len(self._delivered), LATER)
            return None
        return super().restore_unacked(client)

    def ack(self, delivery_tag):
        if self._connection_gone():
            logger.warning("Message %s, done, %s", delivery_tag, LATER)
            return virtual.QoS.ack(self, delivery_tag)  # forgotten here, kept in Redis
        return super().ack(delivery_tag)

    def reject(self, delivery_tag, requeue=False):
        if self._connection_gone():
            logger.warning("Message %s, rejected, %s", delivery_tag, LATER)
            return virtual.QoS.ack(self, delivery_tag)
        return super().reject(delivery_tag, requeue=requeue)


class Channel(redis.Channel):
    QoS = QoS


class Transport(redis.Transport):
    Channel = Channel
