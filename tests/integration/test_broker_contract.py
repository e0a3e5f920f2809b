"""The broker contract on the ORM broker over real PostgreSQL and MariaDB servers."""

import pytest

from djtasks.brokers.database import DatabaseBroker
from tests.broker_contract import BrokerContract, ConcurrentBrokerContract


@pytest.mark.postgres
@pytest.mark.django_db(databases=["postgresql"])
class TestDatabaseBrokerOnPostgreSQL(BrokerContract):
    @pytest.fixture
    def broker(self):  # noqa: ANN201
        return DatabaseBroker("postgresql")


@pytest.mark.postgres
@pytest.mark.django_db(databases=["postgresql"], transaction=True)
class TestConcurrentClaimsOnPostgreSQL(ConcurrentBrokerContract):
    consumers = 6
    messages_count = 600

    @pytest.fixture
    def broker(self):  # noqa: ANN201
        return DatabaseBroker("postgresql")


@pytest.mark.mysql
@pytest.mark.django_db(databases=["mysql"])
class TestDatabaseBrokerOnMariaDB(BrokerContract):
    @pytest.fixture
    def broker(self):  # noqa: ANN201
        return DatabaseBroker("mysql")


@pytest.mark.mysql
@pytest.mark.django_db(databases=["mysql"], transaction=True)
class TestConcurrentClaimsOnMariaDB(ConcurrentBrokerContract):
    consumers = 4
    messages_count = 300

    @pytest.fixture
    def broker(self):  # noqa: ANN201
        return DatabaseBroker("mysql")
